using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// Admits guest memory to a receiver process: an announced guest must fit the per-guest cap and what the host has free
/// now, less what sessions already admitted but not yet filled have reserved. A reservation is held from admission
/// (after authentication) to the end of its session. Thread-safe.
/// </summary>
internal sealed class MemoryAdmission
{
    private readonly object _lock = new();
    private readonly long _capBytes;
    private readonly Func<long> _hostAvailableBytes;
    private long _reservedBytes;
    private int _reservations;

    /// <param name="capBytes">Largest guest one session may bring.</param>
    /// <param name="hostAvailableBytes">What the host can still allocate now (e.g. <see cref="Core.HostMemory.AvailableBytes"/>).</param>
    public MemoryAdmission(long capBytes, Func<long> hostAvailableBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capBytes);
        _capBytes = capBytes;
        _hostAvailableBytes = hostAvailableBytes ?? throw new ArgumentNullException(nameof(hostAvailableBytes));
    }

    public long ReservedBytes { get { lock (_lock) return _reservedBytes; } }

    /// <summary>Reserves <paramref name="bytes"/> or throws <see cref="ReceiverFailedException"/> (InsufficientMemory) saying which limit refused.</summary>
    public IDisposable Reserve(long bytes)
    {
        lock (_lock)
        {
            if (bytes > _capBytes)
                throw new ReceiverFailedException(AbortReason.InsufficientMemory,
                    $"the announced guest memory ({Format(bytes)}) exceeds this receiver's cap ({Format(_capBytes)}, receive --max-memory)");
            long available = _hostAvailableBytes();
            if (bytes > available - _reservedBytes)
                throw new ReceiverFailedException(AbortReason.InsufficientMemory,
                    $"the announced guest memory ({Format(bytes)}) exceeds what this host has free: {Format(available)} available, " +
                    $"{Format(_reservedBytes)} of it reserved by {_reservations} migration(s) in progress");
            _reservedBytes += bytes;
            _reservations++;
            return new Reservation(this, bytes);
        }
    }

    private void Release(long bytes)
    {
        lock (_lock)
        {
            _reservedBytes -= bytes;
            _reservations--;
        }
    }

    private static string Format(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.##} GiB" : $"{bytes / (double)(1 << 20):0.#} MiB";

    private sealed class Reservation(MemoryAdmission owner, long bytes) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) owner.Release(bytes);
        }
    }
}
