namespace KvmPresync.Cli;

/// <summary>Every exit code <c>kvmpresync</c> returns, in one place (listed in the root <c>--help</c> and README.md).</summary>
internal static class ExitCodes
{
    /// <summary>Success: the command did what it was asked, the guest is healthy.</summary>
    public const int Ok = 0;

    /// <summary>The command line did not parse (unknown option, missing value); System.CommandLine's own code.</summary>
    public const int Usage = 1;

    /// <summary>An error before or outside a migration: bad option value, unreadable file, /dev/kvm unavailable, I/O or protocol error.</summary>
    public const int Error = 2;

    /// <summary>The guest stopped with a failure (it crashed or its workload reported an error).</summary>
    public const int GuestFailed = 3;

    /// <summary>The guest ran, but reported self-check or heartbeat-continuity errors (its memory or state was damaged).</summary>
    public const int GuestUnhealthy = 4;

    /// <summary>The migration did not complete: no receiver to connect to, the transfer or verification failed, or (repro) a run failed.</summary>
    public const int MigrationFailed = 5;

    /// <summary>The other side could not be authenticated (different --psk-file); not retried.</summary>
    public const int AuthenticationFailed = 6;

    /// <summary>repro: an honesty check failed (a result faster than the link can carry its data).</summary>
    public const int HonestyCheckFailed = 7;

    /// <summary>
    /// Interrupted: the command stopped on SIGINT (Ctrl-C) or SIGTERM (repro reports the runs that ended), or did not finish
    /// within 2 s of SIGINT (System.CommandLine's code).
    /// </summary>
    public const int Interrupted = 130;

    /// <summary>Terminated by SIGTERM and the command did not finish within 2 s; System.CommandLine's code.</summary>
    public const int Terminated = 143;

    /// <summary>The table for the root command's --help.</summary>
    public static readonly (int Code, string Meaning)[] All =
    [
        (Ok, "success (the guest, where there is one, is healthy)"),
        (Usage, "the command line did not parse"),
        (Error, "error: bad option value, unreadable file, /dev/kvm unavailable, I/O or protocol error"),
        (GuestFailed, "the guest stopped with a failure"),
        (GuestUnhealthy, "the guest reported self-check or continuity errors"),
        (MigrationFailed, "the migration did not complete (no receiver, transfer or verification failed; repro: a run failed)"),
        (AuthenticationFailed, "the other side could not be authenticated (different --psk-file)"),
        (HonestyCheckFailed, "repro: an honesty check failed"),
        (Interrupted, "stopped by Ctrl-C (SIGINT) or SIGTERM (repro reports the runs that ended); or Ctrl-C and the command did not stop within 2 s (repro: 60 s, to remove what it started)"),
        (Terminated, "SIGTERM and the command did not stop within 2 s (repro: 60 s)"),
    ];

    public static string HelpText() =>
        "Exit codes:\n" + string.Join("\n", All.Select(e => $"  {e.Code,3}  {e.Meaning}"));
}
