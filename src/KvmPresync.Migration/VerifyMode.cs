namespace KvmPresync.Migration;

/// <summary>What the source's memory digest at the switchover is computed from (<see cref="PresyncOptions.Verify"/>).</summary>
public enum VerifyMode
{
    /// <summary>
    /// From the hashes of what was sent (the encoder's last-sent hashes, current for every page once the paused delta is
    /// sent): only the pages sent while paused are hashed, so the cost is O(delta), not O(memory). Trusts the dirty log: a
    /// page the guest wrote but the log never reported is not re-read, so the destination's copy of it (the old content)
    /// matches the digest. Transfer errors and changes on the destination are still caught.
    /// </summary>
    Delta = 1,

    /// <summary>
    /// Re-hash every page of the paused source's memory from the bytes (O(memory): about 25–35 ms for 256 MiB here).
    /// Trusts nothing but the bytes: also catches a write the dirty log missed (a dirty-tracking bug, a write by a path the
    /// log does not see).
    /// </summary>
    Full = 2,
}
