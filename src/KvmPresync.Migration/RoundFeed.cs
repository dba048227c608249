using System.Threading.Channels;
using KvmPresync.Engine;

namespace KvmPresync.Migration;

/// <summary>
/// The round stream behind <see cref="PresyncSender.ReadRoundsAsync"/>: one bounded channel per reader, written without
/// waiting (a full channel drops its oldest round), completed when the run ends. A slow or absent reader never slows
/// the migration: publishing is one <c>TryWrite</c> per reader on the sender's thread.
/// </summary>
internal sealed class RoundFeed
{
    private readonly Lock _lock = new();
    private readonly List<Channel<RoundRecord>> _readers = [];
    private bool _ended;

    /// <summary>A new reader's channel; already completed when the run has ended.</summary>
    public Channel<RoundRecord> Subscribe(int capacity)
    {
        var channel = Channel.CreateBounded<RoundRecord>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
            SingleWriter = true,
        });
        lock (_lock)
        {
            if (_ended) channel.Writer.TryComplete();
            else _readers.Add(channel);
        }
        return channel;
    }

    public void Unsubscribe(Channel<RoundRecord> channel)
    {
        lock (_lock) _readers.Remove(channel);
        channel.Writer.TryComplete();
    }

    public void Publish(RoundRecord round)
    {
        lock (_lock)
            foreach (Channel<RoundRecord> reader in _readers)
                reader.Writer.TryWrite(round); // DropOldest: never false, never waits
    }

    /// <summary>The run ended (succeeded, failed or was cancelled): every reader's stream completes after its buffered rounds.</summary>
    public void End()
    {
        lock (_lock)
        {
            _ended = true;
            foreach (Channel<RoundRecord> reader in _readers) reader.Writer.TryComplete();
            _readers.Clear();
        }
    }
}
