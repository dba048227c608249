using KvmPresync.Core;

namespace KvmPresync.Tests.Core;

public sealed class IdleWorkTests
{
    private const int SchedOther = 0, SchedIdle = 5;

    [Fact]
    public async Task WorkRunsOnItsOwnThreadUnderSchedIdle()
    {
        int caller = Environment.CurrentManagedThreadId;
        int policy = -1, thread = caller;
        await IdleWork.Start("idle-test", () =>
        {
            policy = IdleWork.CurrentPolicy();
            thread = Environment.CurrentManagedThreadId;
        }).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.NotEqual(caller, thread);
        Assert.Equal(SchedIdle, policy); // any thread may choose SCHED_IDLE: no privilege needed
        Assert.Equal(SchedOther, IdleWork.CurrentPolicy()); // the caller's policy is untouched
    }

    [Fact]
    public async Task AFailureFaultsTheTask()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            IdleWork.Start("idle-test", () => throw new InvalidOperationException("boom")).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Equal("boom", e.Message);
    }
}
