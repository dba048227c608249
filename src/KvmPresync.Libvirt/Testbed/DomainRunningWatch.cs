using System.Diagnostics;

namespace KvmPresync.Libvirt.Testbed;

/// <summary>
/// Watches for a domain to run on one libvirt instance: polls <c>virDomainLookupByName</c> + <c>virDomainGetState</c>
/// every <see cref="Interval"/> on a connection of its own until the domain exists and is running, and keeps the
/// <see cref="Stopwatch.GetTimestamp"/> of the first poll that saw it run. A migration's destination domain is running
/// once its QEMU was resumed (pre-copy: after the last pass; post-copy: at the switch); the migrate call returns
/// later (Finish, Confirm), so this, not that, marks the guest running again. Resolution: the interval plus one RPC.
/// <see cref="Prepare"/> opens the connection ahead and polls only once <see cref="Arm"/>ed (e.g. at launch), so
/// nothing polls the daemon while the guest is meant to run undisturbed.
/// </summary>
public sealed class DomainRunningWatch : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly ManualResetEventSlim _armed = new();
    private readonly Task _loop;

    private DomainRunningWatch(PrivateLibvirtDaemon daemon, string name, TimeSpan interval)
    {
        Interval = interval;
        LibvirtConnection connection = daemon.Connect();
        _loop = Task.Factory.StartNew(() => Loop(connection, name), TaskCreationOptions.LongRunning);
    }

    public TimeSpan Interval { get; }

    /// <summary>When the domain was first seen running, or null so far.</summary>
    public long? RunningAt { get; private set; }

    /// <summary>
    /// The virDomainRunningReason libvirt gave then: <see cref="ReasonMigrated"/> after a pre-copy migration,
    /// <see cref="ReasonPostcopy"/> when the destination resumed in post-copy (pages still to come); null so far.
    /// </summary>
    public int? RunningReason { get; private set; }

    /// <summary>VIR_DOMAIN_RUNNING_MIGRATED, VIR_DOMAIN_RUNNING_POSTCOPY (libvirt-domain.h).</summary>
    public const int ReasonMigrated = 2, ReasonPostcopy = 10;

    /// <summary>A virDomainRunningReason as libvirt names it (lower case), e.g. "migrated", "postcopy".</summary>
    public static string ReasonName(int reason) => reason switch
    {
        0 => "unknown", 1 => "booted", ReasonMigrated => "migrated", 3 => "restored", 4 => "from snapshot", 5 => "unpaused",
        6 => "migration canceled", 7 => "save canceled", 8 => "wakeup", 9 => "crashed", ReasonPostcopy => "postcopy",
        11 => "postcopy failed", _ => $"reason {reason}",
    };

    /// <summary>Starts watching <paramref name="domainName"/> on <paramref name="daemon"/> at once.</summary>
    public static DomainRunningWatch Start(PrivateLibvirtDaemon daemon, string domainName, TimeSpan? interval = null)
    {
        DomainRunningWatch watch = Prepare(daemon, domainName, interval);
        watch.Arm();
        return watch;
    }

    /// <summary>Connects to <paramref name="daemon"/> now; polls for <paramref name="domainName"/> from <see cref="Arm"/> on.</summary>
    public static DomainRunningWatch Prepare(PrivateLibvirtDaemon daemon, string domainName, TimeSpan? interval = null) =>
        new(daemon, domainName, interval ?? TimeSpan.FromMilliseconds(2));

    /// <summary>Begins polling (idempotent).</summary>
    public void Arm() => _armed.Set();

    private void Loop(LibvirtConnection connection, string name)
    {
        using (connection)
        {
            try { _armed.Wait(_stop.Token); }
            catch (OperationCanceledException) { return; }
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using LibvirtDomain domain = connection.LookupDomain(name);
                    var (state, reason) = domain.GetState();
                    if (state == DomainState.Running)
                    {
                        RunningAt = Stopwatch.GetTimestamp();
                        RunningReason = reason;
                        return;
                    }
                }
                catch (LibvirtException) { } // not there yet (the destination's Prepare phase defines it)
                _stop.Token.WaitHandle.WaitOne(Interval);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
        _armed.Dispose();
    }
}
