namespace KvmPresync.Engine;

/// <summary>
/// Learns when a guest that writes in periodic bursts (a video frame every 40 ms) writes next, from frequent looks at its
/// dirty log that clear nothing (<see cref="Core.IDirtyPagePeek"/>: the count of pages dirtied since the last harvest).
/// A burst starts where the count rises by at least <see cref="MinBurstPages"/> — in one jump, or in jumps of at least a
/// quarter of that at consecutive looks (a host whose write-protect faults are slow writes a burst's pages over several
/// milliseconds: kvm_pvm here took 25–35 of them per look, 30 µs a fault) — after at least <see cref="MinQuiet"/> without
/// such a rise; it ends at the last jump (of at least a quarter of that) within <see cref="MaxGap"/> of the previous
/// one. Period and phase come from a least-squares line through the recent starts against their period numbers (a burst
/// of pages already dirty since the last harvest adds nothing to the count and goes unseen, so a spacing may span several
/// periods; see <see cref="Fit"/>). The clock offers a
/// <see cref="BurstForecast"/> only while the recent starts sit on that grid (<see cref="MinOnGrid"/> of them within the
/// tolerance) and a burst is shorter than its period: a guest that writes steadily or irregularly has none, and the policies
/// then use its working-set curve. A burst's size and length come from the bursts seen first after a harvest (the others
/// show only their pages not already dirty).
/// Not thread-safe: one sampling thread feeds it, readers take <see cref="Forecast"/> under the sampler's lock.
/// </summary>
public sealed class BurstClock
{
    /// <summary>A jump of fewer pages between two looks is noise, not a burst.</summary>
    public long MinBurstPages { get; init; } = 64;

    /// <summary>A burst starts only after this long without a jump.</summary>
    public TimeSpan MinQuiet { get; init; } = TimeSpan.FromMilliseconds(4);

    /// <summary>
    /// Jumps closer than this to the previous one belong to the same burst: a burst's writes pause when its vCPU is off the
    /// CPU (on a busy 2-core host, for 4–8 ms), and a burst split in two would put a false start between the true ones.
    /// </summary>
    public TimeSpan MaxGap { get; init; } = TimeSpan.FromMilliseconds(8);

    /// <summary>Periods outside this range are not tracked (shorter ones look like a steady writer to a 1 ms look).</summary>
    public TimeSpan MinPeriod { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Longer periods are not tracked (a clock that needs seconds of history to learn says little about a launch).</summary>
    public TimeSpan MaxPeriod { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Starts kept (the recent history the period and phase come from).</summary>
    public int History { get; init; } = 24;

    /// <summary>Starts needed before a forecast is offered.</summary>
    public int MinStarts { get; init; } = 6;

    /// <summary>Fraction of the recent starts that must lie on the grid for a forecast.</summary>
    public double MinOnGrid { get; init; } = 0.75;

    private readonly List<Burst> _bursts = [];
    private long _lastCount = -1;
    private TimeSpan? _lastJump;
    private Burst? _current;
    private Rise? _rise; // jumps at consecutive looks that have not added up to a burst's start yet

    /// <summary>Jumps of at least a quarter of <see cref="MinBurstPages"/> at consecutive looks, from the look before the first.</summary>
    private readonly record struct Rise(TimeSpan Start, TimeSpan End, long Pages, bool QuietBefore);
    private bool _harvested;

    /// <summary>
    /// One observed burst: when its first jump was seen (the look before it), when its last one was, pages it added, and
    /// whether it was the first since a harvest (then all its pages show: a later one adds only pages not already dirty).
    /// </summary>
    public readonly record struct Burst(TimeSpan Start, TimeSpan End, long Pages, bool FirstSinceHarvest = false);

    /// <summary>Bursts seen so far (at most <see cref="History"/>), oldest first.</summary>
    public IReadOnlyList<Burst> Bursts => _bursts;

    /// <summary>
    /// Takes one look: <paramref name="dirtyPages"/> dirtied since the last harvest at <paramref name="time"/> (the dirty
    /// source's clock), the look before having been at <paramref name="previousTime"/>. A drop in the count is a harvest.
    /// </summary>
    public void Observe(TimeSpan previousTime, TimeSpan time, long dirtyPages)
    {
        _lastLook = time;
        long last = _lastCount;
        _lastCount = dirtyPages;
        if (last >= 0 && dirtyPages < last) _harvested = true;
        if (last < 0 || dirtyPages <= last) return; // the first look, a harvest in between, or nothing new
        long added = dirtyPages - last;
        if (added < MinBurstPages / 4) return; // a trickle of writes between bursts neither starts nor extends one
        if (_current is { } b && time - b.End <= MaxGap)
        {
            _current = b with { End = time, Pages = b.Pages + added };
            _bursts[^1] = _current.Value;
            _changed = true;
            _lastJump = time;
            return;
        }
        // a start: this jump continues a rise that ended at the look before, or begins one
        Rise rise = _rise is { } r && r.End == previousTime
            ? r with { End = time, Pages = r.Pages + added }
            : new Rise(previousTime, time, added, QuietBefore: _lastJump is not { } j || previousTime - j >= MinQuiet);
        _rise = rise.Pages < MinBurstPages ? rise : null;
        if (rise.Pages < MinBurstPages) return;
        _lastJump = time;
        if (!rise.QuietBefore) return;
        _current = new Burst(rise.Start, time, rise.Pages, _harvested);
        _harvested = false;
        _bursts.Add(_current.Value);
        if (_bursts.Count > History) _bursts.RemoveAt(0);
        _changed = true;
    }

    /// <summary>
    /// The bursts' period, phase and length when the recent starts are periodic; null otherwise. A noisy stretch (bursts split
    /// or missed while the host is busy) keeps the last forecast as long as the newest starts still fall on its grid. It has
    /// <see cref="BurstForecast.EndedAt"/> once the last burst seen has stopped writing, <see cref="BurstForecast.Writing"/> while it may not have.
    /// </summary>
    public BurstForecast? Forecast()
    {
        // the fit changes only with the bursts: a launch reads it every round, the looks add to it every millisecond
        if (_changed)
        {
            _changed = false;
            _forecast = Refit();
        }
        // the last burst is over when no jump came for longer than a burst's writes pause (a burst shorter than the forecast's
        // length, its upper quartile, writes nothing more); while it may still be writing, what it wrote so far says how much
        // of it is left (a burst larger than the quartile, or one that wrote its pages faster, has less left than its time)
        if (_forecast is not { } f || _current is not { } last) return _forecast;
        return _lastLook - last.End > MaxGap ? f with { EndedAt = last.End } : f with { Writing = new BurstProgress(last.Start, last.Pages) };
    }

    private TimeSpan _lastLook;
    private bool _changed;
    private BurstForecast? _forecast;

    private BurstForecast? Refit()
    {
        if (Fit() is { } fresh) return _lastGood = fresh;
        if (_lastGood is not { } last || _bursts.Count < 3) return null;
        double tolerance = Tolerance(last.Period.TotalMilliseconds);
        for (int i = _bursts.Count - 3; i < _bursts.Count; i++)
        {
            TimeSpan start = _bursts[i].Start;
            double off = (start - last.NextStart(start - last.Period / 2)).TotalMilliseconds;
            bool onGrid = Math.Abs(off) <= tolerance, tail = off > 0 && off <= last.Length.TotalMilliseconds + tolerance;
            if (!onGrid && !tail) return _lastGood = null;
        }
        return last;
    }

    private BurstForecast? _lastGood;

    /// <summary>How far off its grid point a start may be and still be on the grid, ms: 8 % of the period, at least 2 ms (the looks' grid).</summary>
    private static double Tolerance(double periodMs) => Math.Max(2, 0.08 * periodMs);

    /// <summary>How far <paramref name="ms"/> is from a whole number of <paramref name="unit"/>s, ms.</summary>
    private static double OffWhole(double ms, double unit) => Math.Abs(ms - Math.Round(ms / unit) * unit);

    /// <summary>The forecast the recent starts give on their own (no memory of an earlier one); null when they are not periodic.</summary>
    private BurstForecast? Fit()
    {
        if (_bursts.Count < MinStarts) return null;
        // a first period: a spacing of about one period (the lower quartile of the spacings: not of two — a burst can go
        // unseen), or the largest fraction of it that makes most spacings a whole number of periods (when most bursts go
        // unseen: a harvest every 100 ms, a burst every 40, spacings of 80 and 120 ms). Each candidate, largest first, is
        // tried by fitting the grid (FitGrid); a smaller one only when the larger does not fit (any fraction of the period
        // makes every spacing whole).
        var spacings = new List<double>(_bursts.Count);
        for (int i = 1; i < _bursts.Count; i++) spacings.Add((_bursts[i].Start - _bursts[i - 1].Start).TotalMilliseconds);
        double[] usable = spacings.Where(d => d >= MinPeriod.TotalMilliseconds).Order().ToArray();
        if (usable.Length < MinStarts - 1) return null;
        double quartile = usable[usable.Length / 4];
        for (int m = 1; m <= 4; m++)
        {
            double u = quartile / m;
            if (u < MinPeriod.TotalMilliseconds) break;
            if (usable.Count(d => OffWhole(d, u) <= 2 * Tolerance(u)) < MinOnGrid * usable.Length) continue;
            double unit = usable.Where(d => OffWhole(d, u) <= 0.2 * u).Average(d => d / Math.Round(d / u));
            if (FitGrid(unit) is { } forecast) return forecast;
        }
        return null;
    }

    /// <summary>
    /// The grid of period about <paramref name="unit"/> through the recent starts, if they sit on it. Each start's period number
    /// comes from the last start before it that sat on a whole number of units (so neither an error in the unit nor a burst
    /// that started late — its vCPU off the CPU — puts the numbers after it off by one); then a least-squares line through the
    /// starts against their numbers, twice, the second time without the starts more than the tolerance off the first line.
    /// The looks' ~1 ms grid quantizes every start; the fit averages that out.
    /// </summary>
    private BurstForecast? FitGrid(double unit)
    {
        var number = new double[_bursts.Count];
        int reference = 0;
        for (int i = 1; i < _bursts.Count; i++)
        {
            double d = (_bursts[i].Start - _bursts[reference].Start).TotalMilliseconds;
            number[i] = number[reference] + Math.Round(d / unit);
            if (OffWhole(d, unit) <= 0.2 * unit) reference = i;
        }
        double period = unit, anchor = _bursts[0].Start.TotalMilliseconds;
        double tolerance = Tolerance(unit);
        for (int pass = 0; pass < 2; pass++)
        {
            double n = 0, sk = 0, ss = 0, skk = 0, sks = 0;
            for (int i = 0; i < _bursts.Count; i++)
            {
                double t = _bursts[i].Start.TotalMilliseconds, k = number[i];
                if (pass > 0 && Math.Abs(t - anchor - k * period) > tolerance) continue;
                n++; sk += k; ss += t; skk += k * k; sks += k * t;
            }
            double det = n * skk - sk * sk;
            if (n < MinStarts || det <= 0) return null;
            period = (n * sks - sk * ss) / det;
            anchor = (ss - period * sk) / n;
            if (!(period >= MinPeriod.TotalMilliseconds && period <= MaxPeriod.TotalMilliseconds)) return null;
            tolerance = Tolerance(period);
        }
        // a start a little after a grid point is the rest of a burst whose writes paused for more than MaxGap (its vCPU off
        // the CPU): it neither counts for the grid nor against it, unless there are many of them
        int onGrid = 0, tails = 0;
        for (int i = 0; i < _bursts.Count; i++)
        {
            double off = _bursts[i].Start.TotalMilliseconds - anchor - number[i] * period;
            if (Math.Abs(off) <= tolerance) onGrid++;
            else if (off > 0 && off <= period / 2) tails++;
        }
        if (onGrid < MinOnGrid * (_bursts.Count - tails) || tails > _bursts.Count / 3) return null;
        // a burst's length and size: upper quartiles of the bursts first since a harvest (all their pages show; a later one
        // shows only those not already dirty since the harvest, and a launch harvests every round), of all when fewer than 3
        // were; and a burst may still be writing when the forecast is read
        List<Burst> whole = _bursts.Where(b => b.FirstSinceHarvest).ToList();
        if (whole.Count < 3) whole = _bursts;
        double[] lengths = whole.Select(b => (b.End - b.Start).TotalMilliseconds).Order().ToArray();
        long[] sizes = whole.Select(b => b.Pages).Order().ToArray();
        double length = Math.Max(1, lengths[lengths.Length * 3 / 4]);
        // bursts as long as their period are a steady writer, whatever grid their starts fit (a period that is a fraction of
        // the true one, found among split bursts)
        if (length >= period) return null;
        return new BurstForecast(TimeSpan.FromMilliseconds(period), TimeSpan.FromMilliseconds(anchor),
            TimeSpan.FromMilliseconds(length), sizes[sizes.Length * 3 / 4]);
    }
}

/// <summary>A burst as the clock saw it so far: its start (the look before its first jump) and the pages it has written.</summary>
public readonly record struct BurstProgress(TimeSpan Start, long Pages);

/// <summary>
/// When a periodic guest writes: bursts of <see cref="Length"/> starting at <see cref="Anchor"/> + k × <see cref="Period"/>
/// (the dirty source's clock, the harvests' <see cref="Core.DirtyHarvest.Time"/>), each of about <see cref="Pages"/>
/// distinct pages, from <see cref="BurstClock"/>.
/// </summary>
public readonly record struct BurstForecast(TimeSpan Period, TimeSpan Anchor, TimeSpan Length, long Pages)
{
    /// <summary>
    /// When the last burst the clock saw stopped writing, if it has (no jump since for longer than <see cref="BurstClock.MaxGap"/>):
    /// the bursts that started by then write nothing after it, however long <see cref="Length"/> says a burst lasts. Null: the
    /// last burst may still be writing.
    /// </summary>
    public TimeSpan? EndedAt { get; init; }

    /// <summary>
    /// The burst the clock last saw, while it may still be writing (null once it has stopped: <see cref="EndedAt"/>, or when
    /// not known): when it started and how many pages it had written at the last look.
    /// </summary>
    public BurstProgress? Writing { get; init; }

    /// <summary>
    /// How many bursts' writes fall within [<paramref name="from"/>, <paramref name="from"/> + <paramref name="window"/>]: each
    /// burst's writes spread evenly over its length, so a window that catches half of one counts 0.5; a burst that ended early
    /// (<see cref="EndedAt"/>) writes nothing after its end; of the burst still writing (<see cref="Writing"/>), at most the
    /// share of its pages it has not written yet, spread over the rest of its length.
    /// </summary>
    public double BurstsWithin(TimeSpan from, TimeSpan window)
    {
        if (window <= TimeSpan.Zero || Period <= TimeSpan.Zero) return 0;
        double p = Period.TotalMilliseconds, len = Math.Max(1e-3, Length.TotalMilliseconds);
        double a = from.TotalMilliseconds, b = a + window.TotalMilliseconds;
        if ((b - a) / p > 10_000) return (b - a) / p; // a window of many periods: one burst per period (and no long loop)
        double first = Math.Floor((a - len - Anchor.TotalMilliseconds) / p); // the first burst that may still be writing at a
        // the grid's burst the one still writing belongs to (its seen start may lag the grid's by a descheduled vCPU)
        double? writingK = Writing is { } w ? Math.Round((w.Start.TotalMilliseconds - Anchor.TotalMilliseconds) / p) : null;
        double total = 0;
        for (double k = first; ; k++)
        {
            double s = Anchor.TotalMilliseconds + k * p;
            if (s >= b) break;
            double end = EndedAt is { } ended && s <= ended.TotalMilliseconds ? Math.Min(s + len, ended.TotalMilliseconds) : s + len;
            double overlap = Math.Min(b, end) - Math.Max(a, s);
            if (overlap <= 0) continue;
            double share = overlap / len;
            if (k == writingK && a > s && Pages > 0)
                share = Math.Min(share, Math.Max(0, 1 - Writing!.Value.Pages / (double)Pages) * overlap / (end - a));
            total += share;
        }
        return total;
    }

    /// <summary>The start of the first burst at or after <paramref name="time"/>.</summary>
    public TimeSpan NextStart(TimeSpan time)
    {
        double p = Period.TotalMilliseconds;
        double k = Math.Ceiling((time.TotalMilliseconds - Anchor.TotalMilliseconds) / p);
        return TimeSpan.FromMilliseconds(Anchor.TotalMilliseconds + k * p);
    }
}
