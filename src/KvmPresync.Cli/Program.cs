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
            LibvirtCommand.Create(),
        };
        try
        {
            ParseResult parsed = root.Parse(args);
            if (parsed.Action is System.CommandLine.Invocation.ParseErrorAction) return UsageErrors.Report(parsed);
            // receive handles SIGTERM/SIGINT itself (drain: abort sessions in flight, keep resumed guests running);
            // every other command lets System.CommandLine cancel it and exit 130/143 after 2 s.
            // trace capture too (end the traced program, write the trace).
            bool ownsSignals = parsed.CommandResult.Command.Name is "receive" or "capture";
            return parsed.Invoke(new InvocationConfiguration
            {
                EnableDefaultExceptionHandler = false,
                // repro tears down what it started (libvirt instances, QEMUs, namespaces) when cancelled: give it the time
                ProcessTerminationTimeout = ownsSignals ? null : parsed.CommandResult.Command.Name == "repro" ? TimeSpan.FromSeconds(60) : TimeSpan.FromSeconds(2),
            });
        }
        catch (OperationCanceledException)
        {
            // SIGINT/SIGTERM: the command stopped what it had started (its finally blocks ran) and reports nothing more
            Console.Out.Flush();
            Console.Error.WriteLine("kvmpresync: interrupted: stopped before it finished; nothing more was written");
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (e is KvmException or ArgumentException or FormatException or IOException or InvalidOperationException
                                       or Trace.TraceFormatException or UnauthorizedAccessException or Wire.ProtocolException or System.Net.Sockets.SocketException or Libvirt.LibvirtException)
        {
            Console.Out.Flush();
            Console.Error.WriteLine($"kvmpresync: error: {e.Message}");
            return ExitCodes.Error;
        }
    }
}
