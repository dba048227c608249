namespace KvmPresync.Migration;

/// <summary>The sender's liveness watchdog found the link dead during sync (nothing from the receiver for too long).</summary>
internal sealed class LinkLostException(string message) : IOException(message);
