using System.CommandLine;
using System.Net;
using KvmPresync.Engine;
using KvmPresync.Wire;

namespace KvmPresync.Cli.Commands;

/// <summary>Options shared by the sending and receiving ends of a migration.</summary>
internal static class MigrationOptions
{
    public static Option<string> PskFile(bool required) => new("--psk-file")
    {
        Description = "File holding the pre-shared key (at least 16 bytes, mode 600). Never put the key on the command line",
        Required = required,
    };

    public static Option<string> LinkRate() => new("--link-rate")
    {
        Description = "In-process token-bucket link rate for what this side sends, e.g. 1gbit, 100mbit, 10MB/s; 'none' for unlimited",
        DefaultValueFactory = _ => "1gbit",
    };

    public static Option<string> Bandwidth() => new("--bandwidth")
    {
        Description = "Link rate the sync policies plan for (launch budget, window) when --link-rate is none, e.g. 1gbit",
        DefaultValueFactory = _ => "1gbit",
    };

    /// <summary>The launch-to-resume target (parse it with <see cref="ParseLaunchTarget"/>).</summary>
    public static Option<string> LaunchTarget() => new("--launch-target")
    {
        Description = "Launch-to-resume target, e.g. 100ms, 50ms: the predictor holds back at most what the link moves in 80 % of it, " +
                      "and the convergence policy pauses the guest in time to meet it where the guest's dirty rate allows. Lower = faster " +
                      "launch, more sync traffic (docs/POLICIES.md, \"The launch target\")",
        DefaultValueFactory = _ => "100ms",
    };

    public static TimeSpan ParseLaunchTarget(string text) => Units.ParsePositiveDuration(text, "--launch-target", example: "100ms");

    /// <summary>Pause at a quiet moment (parse it with <see cref="ParseQuietWait"/>).</summary>
    public static Option<string> PauseAtQuiet() => new("--pause-at-quiet")
    {
        Description = "For guests that write in bursts (a frame every 40 ms): when the guest is about to be paused in the middle of a burst, " +
                      "keep copying live for at most this long (about one burst period, e.g. 40ms), never past --launch-target, and pause in the " +
                      "quiet right after the burst; 'off' = pause at once",
        DefaultValueFactory = _ => "off",
    };

    /// <summary>Time the guest's bursts of writes (<c>PresyncOptions.TimeBursts</c>); parse it with <see cref="ParseOnOff"/>.</summary>
    public static Option<string> BurstClock() => new("--burst-clock")
    {
        Description = "on: look at the dirty log every millisecond (clearing nothing) to time a guest that writes in periodic bursts (a frame " +
                      "every 40 ms); the launch then sends between bursts and pauses before one, and the readiness estimate expects them " +
                      "when they come; off: the working-set curve alone (as 'simulate' does)",
        DefaultValueFactory = _ => "on",
    };

    public static bool ParseOnOff(string option, string text) => text.Trim().ToLowerInvariant() switch
    {
        "on" => true,
        "off" => false,
        _ => throw new ArgumentException($"{option}: '{text}' must be on or off"),
    };

    public static TimeSpan? ParseQuietWait(string text)
    {
        if (text.Trim().Equals("off", StringComparison.OrdinalIgnoreCase)) return null;
        TimeSpan wait = Units.ParseDuration(text, "--pause-at-quiet");
        if (wait <= TimeSpan.Zero) throw new ArgumentException($"--pause-at-quiet: '{text}' must be a positive duration (about one burst period, e.g. 40ms) or off");
        return wait;
    }

    /// <summary>The sync policy of a live migration, as <see cref="SyncPolicyNames"/> spells it (parse it with <see cref="ParseLivePolicy"/>).</summary>
    public static Option<string> Policy() => new("--policy", "-p")
    {
        Description = "Sync policy: none (every dirty page each round, as fast as the link allows) | slowstart (slow-start window, no prediction) | " +
                      "predict (the predictor holds back pages about to change again) | predict+slowstart (both) | " +
                      "oracle (refused here: a bound for 'kvmpresync simulate' that needs the future writes)",
        DefaultValueFactory = _ => "predict+slowstart",
    };

    /// <summary>The policy of a live migration: any but <see cref="SyncPolicy.Oracle"/>, which needs the guest's future writes.</summary>
    public static SyncPolicy ParseLivePolicy(string text)
    {
        SyncPolicy policy = SyncPolicyNames.Parse(text);
        if (policy == SyncPolicy.Oracle)
            throw new ArgumentException("--policy oracle is a future-knowledge bound for 'kvmpresync simulate' only: a live migration cannot know " +
                                        "which pages the guest will write next; use predict or predict+slowstart");
        return policy;
    }

    public static double ParseLinkRate(string text) =>
        text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase) ? 0 : Wire.LinkRate.Parse(text);

    public static IPEndPoint ParseEndpoint(string text, string option)
    {
        if (IPEndPoint.TryParse(text, out IPEndPoint? ep) && ep.Port != 0) return ep;
        throw new ArgumentException($"{option}: '{text}' is not ADDRESS:PORT (e.g. 127.0.0.1:7700)");
    }

    /// <summary><c>--compression auto|off|lz4|zstd</c>.</summary>
    public static Migration.Compression.CompressionMode ParseCompression(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => Migration.Compression.CompressionMode.Auto,
        "off" or "none" => Migration.Compression.CompressionMode.Off,
        "lz4" => Migration.Compression.CompressionMode.Lz4,
        "zstd" => Migration.Compression.CompressionMode.Zstd,
        _ => throw new ArgumentException($"--compression: '{text}' is not auto, off, lz4 or zstd"),
    };

    public static PreSharedKey LoadKey(string path) => Wire.PskFile.Load(path);
}
