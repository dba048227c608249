using System.Net;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// A <see cref="FrameProxy"/> that cuts both connections when the sender's frame type <c>cutAt</c> has been seen
/// <c>count</c> times — the receiver "dies" at an exact protocol phase.
/// </summary>
internal sealed class ChaosProxy : IDisposable
{
    private readonly FrameProxy _proxy;
    private int _seen;

    public ChaosProxy(IPEndPoint upstream, FrameType cutAt, int count = 1) =>
        _proxy = new FrameProxy(upstream, (type, _) =>
        {
            if (type != cutAt || ++_seen < count) return true;
            Cut = true;
            return false;
        });

    public IPEndPoint Endpoint => _proxy.Endpoint;

    public Task Run => _proxy.Run;

    /// <summary>True once the connection was cut at the chosen frame.</summary>
    public bool Cut { get; private set; }

    public void Dispose() => _proxy.Dispose();
}
