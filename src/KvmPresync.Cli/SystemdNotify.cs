using System.Net.Sockets;
using System.Text;

namespace KvmPresync.Cli;

/// <summary>
/// sd_notify(3) without libsystemd: when started by systemd with <c>Type=notify</c>, <c>NOTIFY_SOCKET</c> names a unix
/// datagram socket (a leading '@' means the abstract namespace) to which the service reports READY=1, STATUS=… and
/// STOPPING=1. Without <c>NOTIFY_SOCKET</c> every call does nothing.
/// </summary>
internal static class SystemdNotify
{
    /// <summary>Sends <paramref name="state"/> (e.g. "READY=1\nSTATUS=listening"); false when there is no notify socket or it failed.</summary>
    public static bool Send(string state)
    {
        string? path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path)) return false;
        if (path[0] == '@') path = "\0" + path[1..];
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.SendTo(Encoding.UTF8.GetBytes(state), new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false; // the manager went away; the service itself goes on
        }
    }
}
