using System.Reflection;
using System.Runtime.CompilerServices;

namespace KvmPresync.Core;

/// <summary>
/// Compiles the switchover's code before it is needed. The launch, paused and verify steps run once per migration,
/// at its most time-critical moment; left to the JIT they would be compiled right then (measured: 5–10 ms of
/// launch-to-resume). Called at connect time (sender), after authentication (receiver) and when a destination VM is prepared.
/// </summary>
public static class JitWarmup
{
    private const BindingFlags All = BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <summary>JIT-compiles every non-generic method of <paramref name="types"/> and of their nested types (async state machines, lambdas).</summary>
    public static void Prepare(params Type[] types)
    {
        foreach (Type type in types) PrepareType(type);
    }

    private static void PrepareType(Type type)
    {
        if (type.ContainsGenericParameters) return;
        foreach (MethodInfo method in type.GetMethods(All))
        {
            if (method.IsAbstract || method.ContainsGenericParameters || method.GetMethodBody() is null) continue;
            try
            {
                Compile(method.MethodHandle);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or BadImageFormatException or TypeLoadException)
            {
                // a method the runtime will not prepare ahead (e.g. one bound to a generic context): the JIT compiles it when called
            }
        }
        foreach (ConstructorInfo ctor in type.GetConstructors(All))
            if (!ctor.IsAbstract && ctor.GetMethodBody() is not null) Compile(ctor.MethodHandle);
        foreach (Type nested in type.GetNestedTypes(All)) PrepareType(nested);
    }

    private static void Compile(RuntimeMethodHandle method)
    {
        // PrepareMethod alone silently compiles nothing for a method that has no stable entry point yet — with tiered
        // compilation, a virtual method (an interface implementation such as IMigrationTarget.Resume) until it is first
        // called. Taking its function pointer creates that entry point, and then PrepareMethod compiles it (measured:
        // without this, MachineMigrationTarget.Resume and Dispose were compiled at the switchover, not here).
        _ = method.GetFunctionPointer();
        RuntimeHelpers.PrepareMethod(method);
    }
}
