using KvmPresync.Engine;
using KvmPresync.Migration;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// The sync rounds' working-set probes (<see cref="PresyncOptions.ProbeWorkingSet"/>): extra harvests inside a round whose
/// pages go back into the next harvest. The scripted guest writes pages at every harvest, probes included, so a probe's
/// page that did not reach the destination fails the memory digest (the full one: the default O(delta) digest is built from
/// what was sent, so it trusts the dirty log).
/// </summary>
public sealed class WorkingSetProbeTests
{
    private static async Task<(MigrationResult Sent, ReceiveResult Received, int Probes)> MigrateAsync(bool probe)
    {
        using var guest = new ScriptedGuest(2048, writesPerHarvest: 16) { LaunchAfterHarvests = 14 };
        var (sent, received) = await MigrationHarness.SendToBlankReceiverAsync((socket, key) =>
        {
            var sender = new PresyncSender(guest, socket, key, new PresyncOptions
            {
                Engine = new SyncEngineOptions { Policy = SyncPolicy.Predict, LinkBitsPerSecond = 1e9, RoundInterval = TimeSpan.FromMilliseconds(60) },
                ProbeWorkingSet = probe,
                Verify = VerifyMode.Full, // the digest re-hashes the source's memory: it does not trust the dirty log this test checks
            });
            guest.Launch = sender.Launch;
            return sender;
        });
        // every round harvests once (sync, each live round, the paused one); the rest are the probes
        int roundHarvests = sent.Rounds.Count(r => r.Phase is RoundPhase.Sync or RoundPhase.FinalLive or RoundPhase.Paused);
        return (sent, received, guest.Harvests - roundHarvests);
    }

    [Fact]
    public async Task Pages_a_probe_harvests_reach_the_destination_and_the_digest_holds()
    {
        var (sent, received, probes) = await MigrateAsync(probe: true);
        Assert.True(sent.Succeeded, sent.Failure);
        Assert.True(sent.Verified);
        Assert.True(received.Verified && received.Resumed, received.Failure);
        Assert.True(probes >= 2, $"{probes} probe harvests (expected two in every other sync round)");
    }

    [Fact]
    public async Task Off_harvests_once_a_round()
    {
        var (sent, received, probes) = await MigrateAsync(probe: false);
        Assert.True(sent.Succeeded && received.Verified, sent.Failure ?? received.Failure);
        Assert.Equal(0, probes);
    }
}
