using System.Numerics;
using System.Runtime.CompilerServices;

namespace KvmPresync.Memory;

/// <summary>
/// One bit per guest page, in KVM's layout: bit <c>i % 64</c> of 64-bit word <c>i / 64</c> is page i
/// (little-endian, so the same bytes KVM_GET_DIRTY_LOG fills). Iterated with trailing-zero counts,
/// counted with popcount; the word array is exposed so the KVM harvest can fill it in place.
/// </summary>
public sealed class DirtyBitmap
{
    private readonly ulong[] _words;

    public DirtyBitmap(long pageCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pageCount);
        PageCount = pageCount;
        _words = new ulong[(pageCount + 63) / 64];
    }

    /// <summary>Number of pages the bitmap covers.</summary>
    public long PageCount { get; }

    /// <summary>The backing words (KVM layout). Bits past <see cref="PageCount"/> are always zero.</summary>
    public Span<ulong> Words => _words;

    public ReadOnlySpan<ulong> ReadOnlyWords => _words;

    public bool this[long page]
    {
        get
        {
            CheckPage(page);
            return (_words[page >> 6] & (1UL << (int)(page & 63))) != 0;
        }
        set
        {
            CheckPage(page);
            if (value) _words[page >> 6] |= 1UL << (int)(page & 63);
            else _words[page >> 6] &= ~(1UL << (int)(page & 63));
        }
    }

    public void Set(long page) => this[page] = true;

    /// <summary>Sets a page with an atomic OR: safe against another thread's <see cref="TakeInto"/> (the VMM's writes while a harvest runs).</summary>
    public void SetAtomic(long page)
    {
        CheckPage(page);
        Interlocked.Or(ref _words[page >> 6], 1UL << (int)(page & 63));
    }

    /// <summary>
    /// ORs this bitmap into <paramref name="into"/> and clears it, one atomic exchange per non-zero word: a page set by
    /// <see cref="SetAtomic"/> meanwhile is either taken now or left for the next call, never lost. Returns the pages taken.
    /// </summary>
    public long TakeInto(DirtyBitmap into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into._words.Length != _words.Length)
            throw new ArgumentException($"bitmap has {into._words.Length} words, expected {_words.Length}", nameof(into));
        long taken = 0;
        for (int i = 0; i < _words.Length; i++)
        {
            if (Volatile.Read(ref _words[i]) == 0) continue;
            ulong w = Interlocked.Exchange(ref _words[i], 0);
            taken += BitOperations.PopCount(w);
            into._words[i] |= w;
        }
        return taken;
    }

    /// <summary>Marks every page dirty (e.g. the first round: the receiver holds nothing yet).</summary>
    public void SetAll()
    {
        Array.Fill(_words, ulong.MaxValue);
        TrimTail();
    }

    public void Clear() => Array.Clear(_words);

    /// <summary>Number of set bits.</summary>
    /// <summary>Pages set here and not in <paramref name="other"/> (one pass, nothing changed).</summary>
    public long CountAndNot(DirtyBitmap other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.PageCount != PageCount) throw new ArgumentException($"bitmap covers {other.PageCount} pages, this one {PageCount}", nameof(other));
        ReadOnlySpan<ulong> theirs = other.ReadOnlyWords;
        long n = 0;
        for (int w = 0; w < _words.Length; w++)
            if (_words[w] != 0) n += BitOperations.PopCount(_words[w] & ~theirs[w]);
        return n;
    }

    public long Count()
    {
        long n = 0;
        foreach (ulong w in _words) n += BitOperations.PopCount(w);
        return n;
    }

    public bool IsEmpty()
    {
        return _words.AsSpan().IndexOfAnyExcept(0UL) < 0;
    }

    /// <summary>this |= other (the VMM's own writes, or a fresh harvest merged into what is pending).</summary>
    public void Or(DirtyBitmap other) => Or(other.ReadOnlyWords);

    public void Or(ReadOnlySpan<ulong> words)
    {
        if (words.Length != _words.Length)
            throw new ArgumentException($"bitmap has {words.Length} words, expected {_words.Length}", nameof(words));
        for (int i = 0; i < _words.Length; i++) _words[i] |= words[i];
    }

    /// <summary>this &amp;= ~other.</summary>
    public void AndNot(DirtyBitmap other)
    {
        if (other._words.Length != _words.Length)
            throw new ArgumentException($"bitmap has {other._words.Length} words, expected {_words.Length}", nameof(other));
        for (int i = 0; i < _words.Length; i++) _words[i] &= ~other._words[i];
    }

    public void CopyFrom(DirtyBitmap other)
    {
        if (other._words.Length != _words.Length)
            throw new ArgumentException($"bitmap has {other._words.Length} words, expected {_words.Length}", nameof(other));
        other._words.CopyTo(_words, 0);
    }

    /// <summary>Enumerates set pages in ascending order without allocating.</summary>
    public SetBitEnumerator GetEnumerator() => new(_words);

    /// <summary>
    /// The first maximal run of consecutive set pages at or after <paramref name="from"/>: returns its first page and sets
    /// <paramref name="end"/> one past its last. With no set page there, returns <see cref="PageCount"/> (and end = PageCount).
    /// Walk all runs with <c>for (long p = 0; (p = NextRun(p, out long end)) &lt; PageCount; p = end)</c>.
    /// </summary>
    public long NextRun(long from, out long end)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        end = PageCount;
        if (from >= PageCount) return PageCount;
        int w = (int)(from >> 6);
        ulong bits = _words[w] & (ulong.MaxValue << (int)(from & 63));
        while (bits == 0)
        {
            if (++w >= _words.Length) return PageCount;
            bits = _words[w];
        }
        long first = ((long)w << 6) + BitOperations.TrailingZeroCount(bits);
        ulong clear = ~_words[w] & (ulong.MaxValue << (int)(first & 63));
        while (clear == 0)
        {
            if (++w >= _words.Length) return first;
            clear = ~_words[w];
        }
        end = ((long)w << 6) + BitOperations.TrailingZeroCount(clear); // bits past PageCount are zero: end <= PageCount
        return first;
    }

    private void TrimTail()
    {
        int rem = (int)(PageCount & 63);
        if (rem != 0) _words[^1] &= (1UL << rem) - 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckPage(long page)
    {
        if ((ulong)page >= (ulong)PageCount)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"page outside bitmap of {PageCount} pages");
    }

    public ref struct SetBitEnumerator
    {
        private readonly ReadOnlySpan<ulong> _words;
        private int _index;
        private ulong _current;
        private long _page;

        internal SetBitEnumerator(ReadOnlySpan<ulong> words)
        {
            _words = words;
            _index = -1;
            _current = 0;
            _page = -1;
        }

        public readonly long Current => _page;

        public bool MoveNext()
        {
            while (_current == 0)
            {
                if (++_index >= _words.Length) return false;
                _current = _words[_index];
            }
            int bit = BitOperations.TrailingZeroCount(_current);
            _current &= _current - 1;
            _page = ((long)_index << 6) + bit;
            return true;
        }
    }
}
