using System.Net;
using System.Net.Sockets;

namespace KvmPresync.Tests.Migration;

/// <summary>What tests that run <c>kvmpresync</c> processes need: key files (mode 600) and free loopback ports.</summary>
internal static class CliTestSupport
{
    /// <summary>Writes a 32-byte key of <paramref name="fill"/> bytes into <paramref name="dir"/>, mode 600, and returns its path.</summary>
    public static string WriteKey(string dir, byte fill)
    {
        string path = Path.Combine(dir, $"psk{fill}");
        File.WriteAllBytes(path, Enumerable.Repeat(fill, 32).ToArray());
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    /// <summary>A loopback TCP port free at the time of the call.</summary>
    public static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }
}
