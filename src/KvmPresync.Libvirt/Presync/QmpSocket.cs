using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace KvmPresync.Libvirt.Presync;

/// <summary>
/// A QEMU monitor (QMP) on a unix socket of its own — the extra monitor a presync destination is started with
/// (<see cref="PresyncDomainXml"/>), since libvirt owns the main one and a hook must not call back into libvirt.
/// Commands are sent one at a time; asynchronous events in between are skipped.
/// </summary>
public sealed class QmpSocket : IDisposable
{
    private readonly Socket _socket;
    private readonly StreamReader _reader;
    private readonly Stream _stream;

    private QmpSocket(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    /// <summary>Connects, reads the greeting and leaves capabilities negotiation mode.</summary>
    public static async Task<QmpSocket> ConnectAsync(string path, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
            var qmp = new QmpSocket(socket);
            string? greeting = await qmp._reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            if (greeting is null || !greeting.Contains("\"QMP\"", StringComparison.Ordinal))
                throw new IOException($"{path} is not a QEMU monitor (greeting: {greeting ?? "none"})");
            await qmp.ExecuteAsync("qmp_capabilities", null, cancellationToken).ConfigureAwait(false);
            return qmp;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"cannot reach the destination QEMU's monitor {path}: {e.Message} (was the domain started with the presync destination XML?)", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Runs one command; returns its "return" value, throws <see cref="InvalidOperationException"/> with QEMU's error.</summary>
    public async Task<JsonElement> ExecuteAsync(string command, object? arguments, CancellationToken cancellationToken = default)
    {
        string request = JsonSerializer.Serialize(arguments is null
            ? new Dictionary<string, object> { ["execute"] = command }
            : new Dictionary<string, object> { ["execute"] = command, ["arguments"] = arguments });
        byte[] bytes = Encoding.UTF8.GetBytes(request + "\n");
        await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            string line = await _reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new IOException($"QEMU closed its monitor during {command}");
            using JsonDocument reply = JsonDocument.Parse(line);
            if (reply.RootElement.TryGetProperty("return", out JsonElement ret)) return ret.Clone();
            if (reply.RootElement.TryGetProperty("error", out JsonElement err))
                throw new InvalidOperationException($"QEMU refused {command}: {err.GetProperty("desc").GetString()}");
            // an event: not the reply
        }
    }

    /// <summary>Sets one migration capability (e.g. x-ignore-shared) on this QEMU.</summary>
    public Task SetMigrationCapabilityAsync(string capability, bool state, CancellationToken cancellationToken = default) =>
        ExecuteAsync("migrate-set-capabilities", new Dictionary<string, object>
        {
            ["capabilities"] = new[] { new Dictionary<string, object> { ["capability"] = capability, ["state"] = state } },
        }, cancellationToken);

    public void Dispose()
    {
        _reader.Dispose();
        _stream.Dispose();
        _socket.Dispose();
    }
}
