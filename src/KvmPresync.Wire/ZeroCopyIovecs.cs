using KvmPresync.Memory;
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmPresync.Wire.Interop;

namespace KvmPresync.Wire;

/// <summary>
/// One frame's buffers as iovecs for <c>kp_sock_sendmsg</c>: merges adjacent segments, pins each run for the
/// duration of the write (managed arrays through a pinned GCHandle; native memory needs none), fills a pinned
/// iovec array of at most <see cref="SocketNative.IovMax"/> entries from a cursor, and advances the cursor by the
/// bytes a (possibly partial) send took. Knows which runs are native memory that never moves
/// (<see cref="UnmanagedMemoryManager"/>): only those may go out with MSG_ZEROCOPY. Reused frame after frame;
/// allocates only when a frame has more runs than any before it.
/// </summary>
internal sealed unsafe class ZeroCopyIovecs
{
    private readonly List<ReadOnlyMemory<byte>> _runs = [];
    private readonly KpIovec[] _iov = GC.AllocateArray<KpIovec>(SocketNative.IovMax, pinned: true);
    private MemoryHandle[] _pins = new MemoryHandle[16];
    private Run[] _entries = new Run[16];
    private int _pinned;

    private struct Run
    {
        public nint Address;
        public int Length;
        public bool Native;
    }

    /// <summary>Number of runs of the loaded frame.</summary>
    public int Count => _runs.Count;

    /// <summary>Total bytes of the loaded frame.</summary>
    public long TotalBytes { get; private set; }

    // Safe: the array was allocated on the pinned object heap and lives as long as this object.
    public KpIovec* Iovecs => (KpIovec*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_iov));

    /// <summary>Merges <paramref name="segments"/> into runs (no copy); call <see cref="Pin"/> before filling iovecs.</summary>
    public void Load(IReadOnlyList<ReadOnlyMemory<byte>> segments)
    {
        _runs.Clear();
        SegmentRuns.Merge(segments, _runs);
        long total = 0;
        foreach (ReadOnlyMemory<byte> run in _runs) total += run.Length;
        TotalBytes = total;
    }

    /// <summary>Pins every run and records its address; <see cref="Release"/> undoes it.</summary>
    public void Pin()
    {
        if (_entries.Length < _runs.Count)
        {
            int size = Math.Max(_runs.Count, 2 * _entries.Length);
            _entries = new Run[size];
            _pins = new MemoryHandle[size];
        }
        for (int i = 0; i < _runs.Count; i++)
        {
            ReadOnlyMemory<byte> run = _runs[i];
            _pins[i] = run.Pin();
            _pinned = i + 1;
            _entries[i] = new Run
            {
                Address = (nint)_pins[i].Pointer,
                Length = run.Length,
                Native = MemoryMarshal.TryGetMemoryManager(run, out UnmanagedMemoryManager? _),
            };
        }
    }

    /// <summary>Unpins and drops every reference to the caller's memory.</summary>
    public void Release()
    {
        for (int i = 0; i < _pinned; i++) _pins[i].Dispose();
        Array.Clear(_pins, 0, _pinned);
        _pinned = 0;
        _runs.Clear();
        TotalBytes = 0;
    }

    public bool IsNative(int index) => _entries[index].Native;

    /// <summary>The rest of run <paramref name="index"/> from <paramref name="offset"/>, as memory (for a Socket send).</summary>
    public ReadOnlyMemory<byte> Remainder(int index, int offset) => _runs[index][offset..];

    /// <summary>
    /// The end (exclusive) of the group of runs starting at <paramref name="start"/> that goes out with the same
    /// flags. Without zero copy the whole frame is one group. With it, a stretch of adjacent native runs holding
    /// at least <paramref name="threshold"/> bytes is a zero-copy group; everything else (managed runs and short
    /// native stretches) forms copy groups between them.
    /// </summary>
    public int NextGroup(int start, bool zeroCopy, int threshold, out bool groupIsZeroCopy)
    {
        groupIsZeroCopy = false;
        if (!zeroCopy) return _runs.Count;
        int end = NativeStretchEnd(start, out long bytes);
        if (end > start && bytes >= threshold)
        {
            groupIsZeroCopy = true;
            return end;
        }
        int i = start;
        while (i < _runs.Count)
        {
            if (!_entries[i].Native)
            {
                i++;
                continue;
            }
            int stretchEnd = NativeStretchEnd(i, out long stretchBytes);
            if (stretchBytes >= threshold) break;
            i = stretchEnd;
        }
        return i;
    }

    private int NativeStretchEnd(int start, out long bytes)
    {
        bytes = 0;
        int i = start;
        while (i < _runs.Count && _entries[i].Native) bytes += _entries[i++].Length;
        return i;
    }

    /// <summary>Fills iovecs for runs [index, end) starting <paramref name="offset"/> bytes into run index; returns how many.</summary>
    public int Fill(int index, int offset, int end)
    {
        int count = Math.Min(end - index, SocketNative.IovMax);
        KpIovec* iov = Iovecs;
        for (int k = 0; k < count; k++)
        {
            Run run = _entries[index + k];
            int skip = k == 0 ? offset : 0;
            iov[k].Base = (ulong)(run.Address + skip);
            iov[k].Len = (ulong)(run.Length - skip);
        }
        return count;
    }

    /// <summary>Moves the cursor past <paramref name="sent"/> bytes; returns how many of them came from native runs.</summary>
    public long Advance(ref int index, ref int offset, long sent)
    {
        long native = 0;
        while (sent > 0)
        {
            Run run = _entries[index];
            long left = run.Length - offset;
            long take = Math.Min(left, sent);
            if (run.Native) native += take;
            sent -= take;
            if (take == left)
            {
                index++;
                offset = 0;
            }
            else
            {
                offset += (int)take;
            }
        }
        return native;
    }
}
