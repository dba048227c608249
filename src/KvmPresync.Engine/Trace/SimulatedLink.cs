using KvmPresync.Core;
namespace KvmPresync.Trace;

/// <summary>
/// A modelled network link: bytes sent join a FIFO queue that drains at the link rate; acks report what drained.
/// RTT = base RTT + standing queue / rate (the delay a probe sent at the end of the round would see).
/// </summary>
public sealed class SimulatedLink
{
    public SimulatedLink(double bitsPerSecond, TimeSpan baseRtt)
    {
        if (!(bitsPerSecond > 0) || double.IsInfinity(bitsPerSecond))
            throw new ArgumentOutOfRangeException(nameof(bitsPerSecond), bitsPerSecond, "link rate must be a positive, finite number of bits per second");
        if (baseRtt < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(baseRtt), baseRtt, "base RTT must not be negative");
        BytesPerSecond = bitsPerSecond / 8;
        BaseRtt = baseRtt;
    }

    public double BytesPerSecond { get; }

    public TimeSpan BaseRtt { get; }

    /// <summary>Bytes queued and not yet delivered.</summary>
    public long Backlog { get; private set; }

    /// <summary>Bytes the link can move in <paramref name="elapsed"/>.</summary>
    public long Capacity(TimeSpan elapsed) => (long)Math.Floor(BytesPerSecond * elapsed.TotalSeconds);

    public void Send(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Backlog += bytes;
    }

    /// <summary>Lets <paramref name="elapsed"/> pass; returns the bytes delivered (and acked) meanwhile.</summary>
    public long Advance(TimeSpan elapsed)
    {
        long drained = Math.Min(Backlog, Capacity(elapsed));
        Backlog -= drained;
        return drained;
    }

    public TimeSpan Rtt => BaseRtt + TimeSpan.FromSeconds(Backlog / BytesPerSecond);
}
