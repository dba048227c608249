using System.Runtime;
using System.Runtime.CompilerServices;
using KvmPresync.Core;
using KvmPresync.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// <see cref="AsyncBuilderWarmup"/> compiles the builder code that starts an async method (generic over its state machine, a
/// struct in a release build), which <see cref="JitWarmup"/> leaves to the first call: after both, the first call of an async
/// step compiles nothing — the receiver's FinalState handler is first called inside the downtime. Likewise
/// <see cref="SenderChannel.WarmCompletions"/> for the sender's completion of Resumed.
/// </summary>
public sealed class AsyncBuilderWarmupTests
{
    // Each type is prepared by one test only and called only after that, so its code cannot have been compiled before.
    private sealed class WarmedStep
    {
        public async Task<int> RunAsync(int x)
        {
            await Task.CompletedTask.ConfigureAwait(false);
            return x * 3 + 1;
        }

        public async Task NothingAsync() => await Task.CompletedTask.ConfigureAwait(false);
    }

    private sealed class ColdStep
    {
        public async Task<int> RunAsync(int x)
        {
            await Task.CompletedTask.ConfigureAwait(false);
            return x * 5 + 2;
        }
    }

    private sealed class Unused
    {
        public async Task<int> TouchAsync()
        {
            await Task.CompletedTask.ConfigureAwait(false);
            return 0;
        }
    }

    private static bool StructStateMachines(Type owner) =>
        owner.GetNestedTypes(System.Reflection.BindingFlags.NonPublic).Any(t => typeof(IAsyncStateMachine).IsAssignableFrom(t) && t.IsValueType);

    [Fact]
    public async Task A_prepared_async_method_compiles_nothing_at_its_first_call()
    {
        WarmTheWarmup();
        JitWarmup.Prepare(typeof(WarmedStep));
        AsyncBuilderWarmup.Prepare(typeof(WarmedStep));
        var step = new WarmedStep();
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        Task<int> run = step.RunAsync(2);
        Task nothing = step.NothingAsync();
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        Assert.True(run.IsCompletedSuccessfully && nothing.IsCompletedSuccessfully);
        Assert.Equal(7, await run);
        Assert.True(compiled == 0, $"the first calls of prepared async methods JIT-compiled {compiled} method(s)");
    }

    [Fact]
    public async Task Without_it_the_first_call_compiles_the_builder()
    {
        // The control: what AsyncBuilderWarmup is for (a debug build's state machines are classes, whose builder code is shared).
        Assert.SkipUnless(StructStateMachines(typeof(ColdStep)), "this build's async state machines are classes");
        WarmTheWarmup();
        JitWarmup.Prepare(typeof(ColdStep));
        var step = new ColdStep();
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        Task<int> run = step.RunAsync(1);
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        Assert.Equal(7, await run);
        Assert.True(compiled > 0, "the first call of an async method only JitWarmup prepared compiled nothing: the control does not show what it should");
    }

    [Fact]
    public void The_receiver_session_and_a_type_without_async_methods_are_prepared_without_error_and_once()
    {
        AsyncBuilderWarmup.Prepare(typeof(ReceiverSession));
        AsyncBuilderWarmup.Prepare(typeof(ReceiverSession));
        AsyncBuilderWarmup.Prepare(typeof(string));
    }

    [Fact]
    public void The_sender_completes_Resumed_without_compiling_at_the_switchover()
    {
        SenderChannel.WarmCompletions();
        var resumed = new TaskCompletionSource<Resumed>(TaskCreationOptions.RunContinuationsAsynchronously);
        var body = new Resumed(1, 2);
        _ = JitInfo.GetCompiledMethodCount(currentThread: true);
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        bool set = resumed.TrySetResult(body);
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        Assert.True(set);
        Assert.True(compiled == 0, $"completing Resumed after the warm-up JIT-compiled {compiled} method(s)");
    }

    /// <summary>The warm-ups' own code, the reflection they use and the counter, compiled before anything is measured.</summary>
    private static void WarmTheWarmup()
    {
        JitWarmup.Prepare(typeof(Unused));
        AsyncBuilderWarmup.Prepare(typeof(Unused));
        _ = new Unused().TouchAsync();
        _ = JitInfo.GetCompiledMethodCount(currentThread: true);
    }
}
