namespace KvmPresync.Interop;

/// <summary>Names of the native libraries the engine binds to (one place, as dotnet/runtime does).</summary>
internal static partial class Native
{
    internal static class Libraries
    {
        /// <summary>native/build/libkvmpresync.so, copied next to the assembly by the build.</summary>
        public const string Shim = "kvmpresync";
    }
}
