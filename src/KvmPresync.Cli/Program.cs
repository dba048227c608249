using System.CommandLine;
using KvmPresync.Cli.Commands;
using KvmPresync.Kvm;

namespace KvmPresync.Cli;

/// <summary>The <c>kvmpresync</c> command.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("kvmpresync — pre-synchronized live migration of KVM guests\n\n" + ExitCodes.HelpText())
        {
            RunCommand.Create(),
            ReceiveCommand.Create(),
            TraceCommands.Create(),
            SimulateCommand.Create(),
            Repro.ReproCommand.Create(),
        };
        try
        {
            return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is KvmException or ArgumentException or FormatException or IOException or InvalidOperationException
                                       or Trace.TraceFormatException or UnauthorizedAccessException or Wire.ProtocolException or System.Net.Sockets.SocketException)
        {
            Console.Out.Flush();
            Console.Error.WriteLine($"kvmpresync: error: {e.Message}");
            return ExitCodes.Error;
        }
    }
}
