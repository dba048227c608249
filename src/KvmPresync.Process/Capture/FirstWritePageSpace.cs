namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// The compact page space of a capture: every distinct page identity written so far gets the next index, in the order
/// of first write; the pages first written in the same interval are numbered in ascending identity order, so pages
/// written together and adjacent in their space get adjacent indexes (runs stay runs). The page count is known only
/// at the end (docs/TRACE_FORMAT.md, "Captured traces").
/// </summary>
public sealed class FirstWritePageSpace
{
    private readonly Dictionary<(bool, ulong, ulong, int), int> _spaceIds = [];
    private readonly List<MemorySpace> _spaces = [];
    private readonly Dictionary<PageIdentity, long> _index = [];
    private readonly List<PageIdentity> _byIndex = [];
    private readonly List<int> _regionOf = [];
    private readonly Dictionary<string, int> _regionIds = new(StringComparer.Ordinal);
    private readonly List<string> _regionNames = [];
    private readonly List<long> _regionPages = [];

    /// <summary>Distinct pages written so far.</summary>
    public long PageCount => _byIndex.Count;

    public IReadOnlyList<MemorySpace> Spaces => _spaces;

    /// <summary>The number of <paramref name="space"/> (the same for every space with its key: shared object or process).</summary>
    public int SpaceOf(MemorySpace space)
    {
        if (_spaceIds.TryGetValue(space.Key, out int id)) return id;
        id = _spaces.Count;
        _spaces.Add(space);
        _spaceIds.Add(space.Key, id);
        return id;
    }

    /// <summary>
    /// The number of the shared object <paramref name="device"/>:<paramref name="inode"/>; its <see cref="MemorySpace"/>
    /// (named <paramref name="name"/>) is made only the first time it is seen.
    /// </summary>
    internal int SharedSpaceOf(ulong device, ulong inode, string name) =>
        _spaceIds.TryGetValue((true, device, inode, -1), out int id) ? id : SpaceOf(new MemorySpace(true, device, inode, -1, 0, name));

    /// <summary>
    /// One interval's written pages (identity → the mapping's name) → their compact indexes, ascending. Pages never
    /// written before are numbered now, in identity order.
    /// </summary>
    public long[] Assign(IReadOnlyDictionary<PageIdentity, string> written)
    {
        ArgumentNullException.ThrowIfNull(written);
        var fresh = new List<PageIdentity>();
        var result = new long[written.Count];
        int n = 0;
        foreach (PageIdentity id in written.Keys)
        {
            if (_index.TryGetValue(id, out long i)) result[n++] = i;
            else fresh.Add(id);
        }
        fresh.Sort();
        foreach (PageIdentity id in fresh)
        {
            long i = _byIndex.Count;
            _index.Add(id, i);
            _byIndex.Add(id);
            int region = RegionId(written[id]);
            _regionOf.Add(region);
            _regionPages[region]++;
            result[n++] = i;
        }
        Array.Sort(result);
        return result;
    }

    /// <summary>The identity, space and first-written mapping of compact page <paramref name="index"/>.</summary>
    public CapturedPage PageAt(long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, PageCount);
        PageIdentity id = _byIndex[(int)index];
        return new CapturedPage(id, _spaces[id.Space], _regionNames[_regionOf[(int)index]]);
    }

    /// <summary>Distinct pages per mapping name (all processes together), most first.</summary>
    public IReadOnlyList<(string Region, long Pages)> Regions() =>
        _regionNames.Select((name, i) => (name, _regionPages[i])).OrderByDescending(r => r.Item2).ThenBy(r => r.name, StringComparer.Ordinal).ToList();

    private int RegionId(string name)
    {
        if (_regionIds.TryGetValue(name, out int id)) return id;
        id = _regionNames.Count;
        _regionIds.Add(name, id);
        _regionNames.Add(name);
        _regionPages.Add(0);
        return id;
    }
}
