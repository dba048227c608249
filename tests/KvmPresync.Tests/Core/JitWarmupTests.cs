using System.Runtime;
using KvmPresync.Core;

namespace KvmPresync.Tests.Core;

/// <summary>
/// <see cref="JitWarmup"/> compiles ahead what the switchover calls, so that the first call compiles nothing — interface
/// implementations included (IMigrationTarget.Resume is one), which RuntimeHelpers.PrepareMethod alone leaves uncompiled.
/// </summary>
public sealed class JitWarmupTests
{
    private interface IStep
    {
        long Run(long x);
    }

    // Each type is prepared by one test only and called only after that, so its methods cannot have been compiled before.
    private sealed class InterfaceStep : IStep
    {
        public long Run(long x) => x * 3 + 1;
    }

    private sealed class PlainStep
    {
        public long Run(long x) => x * 5 + 2;

        public static long Twice(long x) => x * 2;
    }

    private sealed class Unused
    {
        public long Touch() => 0;
    }

    [Fact]
    public void An_interface_implementation_is_compiled_ahead()
    {
        WarmTheWarmup();
        JitWarmup.Prepare(typeof(InterfaceStep));
        IStep step = new InterfaceStep();
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        long result = step.Run(2);
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        Assert.Equal(7, result);
        Assert.True(compiled == 0, $"the first call of a prepared interface implementation JIT-compiled {compiled} method(s)");
    }

    [Fact]
    public void Instance_and_static_methods_are_compiled_ahead()
    {
        WarmTheWarmup();
        JitWarmup.Prepare(typeof(PlainStep));
        var step = new PlainStep();
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        long result = step.Run(1) + PlainStep.Twice(3);
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        Assert.Equal(13, result);
        Assert.True(compiled == 0, $"the first calls of prepared methods JIT-compiled {compiled} method(s)");
    }

    /// <summary>JitWarmup's own code, the reflection it uses and the counter, compiled before anything is measured.</summary>
    private static void WarmTheWarmup()
    {
        JitWarmup.Prepare(typeof(Unused));
        _ = JitInfo.GetCompiledMethodCount(currentThread: true);
    }
}
