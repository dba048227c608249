namespace KvmPresync.Interop;

/// <summary>Names of the native libraries the engine binds to (one place, as dotnet/runtime does).</summary>
internal static partial class Native
{
    internal static class Libraries
    {
        /// <summary>
        /// libkvmpresync.so: in this repository native/build's copy next to the assembly; from the KvmPresync.Core package,
        /// runtimes/linux-x64/native/, which the host adds to the runtime's native search path from the app's deps.json
        /// (next to the app after a linux-x64 publish). No resolver needed (docs/ARCHITECTURE.md, "Packages").
        /// </summary>
        public const string Shim = "kvmpresync";
    }
}
