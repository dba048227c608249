using System.Diagnostics;

namespace KvmPresync.Libvirt.Testbed;

/// <summary>
/// Watches for a domain to run on one libvirt instance: polls <c>virDomainLookupByName</c> + <c>virDomainGetState</c>
/// every <see cref="Interval"/> on a connection of its own until the domain exists and is running, and keeps the
/// <see cref="Stopwatch.GetTimestamp"/> of the first poll that saw it run. A migration's destination domain is running
/// once its QEMU was resumed (pre-copy: after the last pass; post-copy: at the switch); the migrate call returns
/// later (Finish, Confirm), so this, not that, marks the guest running again. Resolution: the interval plus one RPC.
/// </summary>
public sealed class DomainRunningWatch : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
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

    /// <summary>Starts watching <paramref name="domainName"/> on <paramref name="daemon"/>.</summary>
    public static DomainRunningWatch Start(PrivateLibvirtDaemon daemon, string domainName, TimeSpan? interval = null) =>
        new(daemon, domainName, interval ?? TimeSpan.FromMilliseconds(2));

    private void Loop(LibvirtConnection connection, string name)
    {
        using (connection)
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using LibvirtDomain domain = connection.LookupDomain(name);
                    if (domain.State == DomainState.Running)
                    {
                        RunningAt = Stopwatch.GetTimestamp();
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
    }
}
