using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace KvmPresync.Migration;

/// <summary>
/// Compiles, for each async method of a type, the method builder's <c>Start</c> instantiated over that method's state machine.
/// <see cref="Core.JitWarmup"/> compiles the methods and their state machines' <c>MoveNext</c>, but not this generic code: in a
/// release build a state machine is a struct, so the runtime shares no compiled code for it and JIT-compiles
/// <c>AsyncTaskMethodBuilder.Start&lt;TStateMachine&gt;</c> (and the core it calls) at the method's first call. For the receiver's
/// FinalState handler that first call is inside the downtime (measured ~0.3 ms between reading FinalState's header and
/// entering its handler).
/// </summary>
internal static class AsyncBuilderWarmup
{
    private const BindingFlags All = BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    private static readonly ConcurrentDictionary<Type, bool> Prepared = new();

    /// <summary>The runtime's shared builder core (<c>System.Runtime.CompilerServices.AsyncMethodBuilderCore</c>); null if this runtime has none.</summary>
    private static readonly MethodInfo? CoreStart = typeof(AsyncTaskMethodBuilder).Assembly
        .GetType("System.Runtime.CompilerServices.AsyncMethodBuilderCore")?.GetMethod("Start", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic);

    /// <summary>Prepares the builders of every async method declared by <paramref name="owner"/> (once per type and process). Never throws.</summary>
    public static void Prepare(Type owner)
    {
        if (!Prepared.TryAdd(owner, true)) return;
        foreach (Type machine in owner.GetNestedTypes(All))
        {
            if (!machine.IsValueType || machine.ContainsGenericParameters || !typeof(IAsyncStateMachine).IsAssignableFrom(machine)) continue;
            Type? builder = machine.GetField("<>t__builder", All)?.FieldType;
            if (builder is null || builder.ContainsGenericParameters) continue;
            TryPrepare(builder.GetMethod("Start", BindingFlags.Instance | BindingFlags.Public), machine);
            TryPrepare(CoreStart, machine);
        }
    }

    private static void TryPrepare(MethodInfo? generic, Type machine)
    {
        if (generic is null || !generic.IsGenericMethodDefinition || generic.GetGenericArguments().Length != 1) return;
        try
        {
            MethodInfo method = generic.MakeGenericMethod(machine);
            _ = method.MethodHandle.GetFunctionPointer();
            RuntimeHelpers.PrepareMethod(method.MethodHandle);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException or TypeLoadException or BadImageFormatException)
        {
            // left to the JIT at the first call
        }
    }
}
