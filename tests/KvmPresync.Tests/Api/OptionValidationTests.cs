using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Libvirt.Presync;
using KvmPresync.Libvirt.Testbed;
using KvmPresync.Trace;
using KvmPresync.Migration;
using KvmPresync.Migration.Compression;
using KvmPresync.Tests.Tls;
using KvmPresync.Vmm;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Api;

/// <summary>
/// Every option is checked when it is set (docs/ARCHITECTURE.md, "API conventions"): an invalid value throws at
/// construction, with the option as the parameter name and a message naming <c>Type.Option</c>.
/// </summary>
public sealed class OptionValidationTests
{
    private static readonly TimeSpan Negative = TimeSpan.FromMilliseconds(-5);

    /// <summary>(the option as "Type.Option", a construction that sets it to an invalid value).</summary>
    public static TheoryData<string, Func<object>> InvalidOptions() => new()
    {
        { "PresyncOptions.Engine", () => new PresyncOptions { Engine = null! } },
        { "PresyncOptions.RateLimitBitsPerSecond", () => new PresyncOptions { RateLimitBitsPerSecond = -1 } },
        { "PresyncOptions.RateLimitBitsPerSecond", () => new PresyncOptions { RateLimitBitsPerSecond = double.NaN } },
        { "PresyncOptions.SwitchoverCost", () => new PresyncOptions { SwitchoverCost = Negative } },
        { "PresyncOptions.BatchPages", () => new PresyncOptions { BatchPages = 0 } },
        { "PresyncOptions.BatchPages", () => new PresyncOptions { BatchPages = WireLimits.MaxPagesPerBatch + 1 } },
        { "PresyncOptions.ResumeTimeout", () => new PresyncOptions { ResumeTimeout = TimeSpan.Zero } },
        { "PresyncOptions.DestinationReadyTimeout", () => new PresyncOptions { DestinationReadyTimeout = Negative } },
        { "PresyncOptions.HandoverTimeout", () => new PresyncOptions { HandoverTimeout = TimeSpan.Zero } },
        { "PresyncOptions.Compression", () => new PresyncOptions { Compression = (CompressionMode)99 } },
        { "PresyncOptions.Streams", () => new PresyncOptions { Streams = 0 } },
        { "PresyncOptions.Streams", () => new PresyncOptions { Streams = WireLimits.MaxStreams + 1 } },
        { "PresyncOptions.Verify", () => new PresyncOptions { Verify = (VerifyMode)99 } },
        { "ReceiverOptions.MaxMemoryBytes", () => new ReceiverOptions { MaxMemoryBytes = 0 } },
        { "MetricsEndpointOptions.RequestTimeout", () => new KvmPresync.Metrics.MetricsEndpointOptions { RequestTimeout = TimeSpan.Zero } },
        { "MetricsEndpointOptions.MaxRequestBytes", () => new KvmPresync.Metrics.MetricsEndpointOptions { MaxRequestBytes = 10 } },
        { "MetricsEndpointOptions.MaxConnections", () => new KvmPresync.Metrics.MetricsEndpointOptions { MaxConnections = 0 } },
        { "ReceiverOptions.LinkBitsPerSecond", () => new ReceiverOptions { LinkBitsPerSecond = -1 } },
        { "ReceiverOptions.HandshakeTimeout", () => new ReceiverOptions { HandshakeTimeout = TimeSpan.Zero } },
        { "ReceiverOptions.IdleTimeout", () => new ReceiverOptions { IdleTimeout = Negative } },
        { "ReceiveServiceOptions.Receiver", () => new ReceiveServiceOptions { Receiver = null! } },
        { "ReceiveServiceOptions.MaxConcurrentSessions", () => new ReceiveServiceOptions { MaxConcurrentSessions = 0 } },
        { "ReceiveServiceOptions.HostAvailableBytes", () => new ReceiveServiceOptions { HostAvailableBytes = null! } },
        { "ReceiveServiceOptions.ParkFor", () => new ReceiveServiceOptions { ParkFor = Negative } },
        { "ReconnectOptions.Connect", () => new ReconnectOptions(null!) },
        { "ReconnectOptions.InitialBackoff", () => Reconnect() with { InitialBackoff = TimeSpan.Zero } },
        { "ReconnectOptions.MaxBackoff", () => Reconnect() with { MaxBackoff = Negative } },
        { "ReconnectOptions.MaxOutage", () => Reconnect() with { MaxOutage = TimeSpan.Zero } },
        { "ReconnectOptions.LivenessTimeout", () => Reconnect() with { LivenessTimeout = TimeSpan.Zero } },
        { "ReconnectOptions.ConnectTimeout", () => Reconnect() with { ConnectTimeout = TimeSpan.Zero } },
        { "ReconnectOptions.ResumeHandshakeTimeout", () => Reconnect() with { ResumeHandshakeTimeout = TimeSpan.Zero } },
        { "SyncEngineOptions.Policy", () => new SyncEngineOptions { Policy = (SyncPolicy)99 } },
        { "SyncEngineOptions.LinkBitsPerSecond", () => new SyncEngineOptions { LinkBitsPerSecond = 0 } },
        { "SyncEngineOptions.LinkBitsPerSecond", () => new SyncEngineOptions { LinkBitsPerSecond = double.PositiveInfinity } },
        { "SyncEngineOptions.LaunchTarget", () => new SyncEngineOptions { LaunchTarget = Negative } },
        { "SyncEngineOptions.RoundInterval", () => new SyncEngineOptions { RoundInterval = TimeSpan.Zero } },
        { "SyncEngineOptions.HeaderBytesPerPage", () => new SyncEngineOptions { HeaderBytesPerPage = -1 } },
        { "SyncEngineOptions.Predictor", () => new SyncEngineOptions { Predictor = null! } },
        { "SyncEngineOptions.HoldBack", () => new SyncEngineOptions { HoldBack = null! } },
        { "SyncEngineOptions.Window", () => new SyncEngineOptions { Window = null! } },
        { "SyncEngineOptions.Convergence", () => new SyncEngineOptions { Convergence = null! } },
        { "HoldBackOptions.Threshold", () => new HoldBackOptions { Threshold = 1.5 } },
        { "HoldBackOptions.Ranking", () => new HoldBackOptions { Ranking = (HoldRanking)0 } },
        { "ChangePredictorOptions.Decay", () => new ChangePredictorOptions { Decay = 0 } },
        { "ChangePredictorOptions.PriorWeight", () => new ChangePredictorOptions { PriorWeight = -1 } },
        { "ChangePredictorOptions.ResidualShift", () => new ChangePredictorOptions { ResidualShift = 8 } },
        { "SyncWindowOptions.InitialWindowBytes", () => new SyncWindowOptions { InitialWindowBytes = 0 } },
        { "SyncWindowOptions.MinWindowBytes", () => new SyncWindowOptions { MinWindowBytes = 0 } },
        { "SyncWindowOptions.MaxWindowBytes", () => new SyncWindowOptions { MaxWindowBytes = -1 } },
        { "SyncWindowOptions.InitialSsthreshBytes", () => new SyncWindowOptions { InitialSsthreshBytes = 0 } },
        { "SyncWindowOptions.AdditiveIncreaseBytes", () => new SyncWindowOptions { AdditiveIncreaseBytes = -1 } },
        { "SyncWindowOptions.DecreaseFactor", () => new SyncWindowOptions { DecreaseFactor = 1 } },
        { "SyncWindowOptions.RttRiseFactor", () => new SyncWindowOptions { RttRiseFactor = 1 } },
        { "SyncWindowOptions.MinRttRise", () => new SyncWindowOptions { MinRttRise = Negative } },
        { "SyncWindowOptions.RttRiseIntervalFraction", () => new SyncWindowOptions { RttRiseIntervalFraction = -0.1 } },
        { "SyncWindowOptions.GoodputShortfall", () => new SyncWindowOptions { GoodputShortfall = 0 } },
        { "SyncWindowOptions.MinBytesForGoodputSignal", () => new SyncWindowOptions { MinBytesForGoodputSignal = -1 } },
        { "SyncWindowOptions.SlowdownFraction", () => new SyncWindowOptions { SlowdownFraction = 1 } },
        { "SyncWindowOptions.BaselineProgressRate", () => new SyncWindowOptions { BaselineProgressRate = 0 } },
        { "SyncWindowOptions.DecreaseHoldoffRounds", () => new SyncWindowOptions { DecreaseHoldoffRounds = -1 } },
        { "SyncWindowOptions.AppLimitedFraction", () => new SyncWindowOptions { AppLimitedFraction = 1.5 } },
        { "SyncWindowOptions.RateCapBytesPerSecond", () => new SyncWindowOptions { RateCapBytesPerSecond = 0 } },
        { "SyncWindowOptions.InitialInterval", () => new SyncWindowOptions { InitialInterval = TimeSpan.Zero } },
        { "SyncWindowOptions.MinInterval", () => new SyncWindowOptions { MinInterval = Negative } },
        { "SyncWindowOptions.MaxInterval", () => new SyncWindowOptions { MaxInterval = TimeSpan.Zero } },
        { "SyncWindowOptions.IntervalStep", () => new SyncWindowOptions { IntervalStep = 1 } },
        { "SyncWindowOptions.ShortenBelowFraction", () => new SyncWindowOptions { ShortenBelowFraction = 0 } },
        { "DowntimeTargetConvergence.DowntimeTarget", () => new DowntimeTargetConvergence { DowntimeTarget = Negative } },
        { "DowntimeTargetConvergence.MaxLiveDuration", () => new DowntimeTargetConvergence { MaxLiveDuration = Negative } },
        { "DowntimeTargetConvergence.ShrinkRatio", () => new DowntimeTargetConvergence { ShrinkRatio = 0 } },
        { "DowntimeTargetConvergence.MaxDowntime", () => new DowntimeTargetConvergence { MaxDowntime = TimeSpan.Zero } },
        { "DowntimeTargetConvergence.QuietWait", () => new DowntimeTargetConvergence { QuietWait = TimeSpan.Zero } },
        { "DowntimeTargetConvergence.BurstRatio", () => new DowntimeTargetConvergence { BurstRatio = 0 } },
        { "SimulationOptions.Policy", () => new SimulationOptions { Policy = (SyncPolicy)99 } },
        { "SimulationOptions.LinkBitsPerSecond", () => new SimulationOptions { LinkBitsPerSecond = -1 } },
        { "SimulationOptions.BaseRtt", () => new SimulationOptions { BaseRtt = Negative } },
        { "SimulationOptions.WarmUp", () => new SimulationOptions { WarmUp = Negative } },
        { "SimulationOptions.Duration", () => new SimulationOptions { Duration = Negative } },
        { "SimulationOptions.RoundInterval", () => new SimulationOptions { RoundInterval = TimeSpan.Zero } },
        { "SimulationOptions.LaunchTarget", () => new SimulationOptions { LaunchTarget = Negative } },
        { "SimulationOptions.HeaderBytesPerPage", () => new SimulationOptions { HeaderBytesPerPage = -1 } },
        { "SimulationOptions.Predictor", () => new SimulationOptions { Predictor = null! } },
        { "SimulationOptions.HoldBack", () => new SimulationOptions { HoldBack = null! } },
        { "SimulationOptions.Window", () => new SimulationOptions { Window = null! } },
        { "SimulationOptions.Convergence", () => new SimulationOptions { Convergence = null! } },
        { "MachineConfig.MemorySize", () => new MachineConfig { MemorySize = 0 } },
        { "MachineConfig.MemorySize", () => new MachineConfig { MemorySize = (1L << 20) + 1 } },
        { "MachineConfig.MemorySize", () => new MachineConfig { MemorySize = KvmPresync.Vmm.Boot.LongModeSetup.MaxMemory + 4096 } },
        { "MachineConfig.LowMemoryTop", () => new MachineConfig { LowMemoryTop = (64L << 20) + 4096 } },
        { "MachineConfig.FillBytes", () => new MachineConfig { FillBytes = -1 } },
        { "MachineConfig.ZeroPermille", () => new MachineConfig { ZeroPermille = 1001 } },
        { "MachineConfig.Params", () => new MachineConfig { Params = new ulong[1] } },
        { "MachineConfig.Params", () => new MachineConfig { Params = null! } },
        { "MachineConfig.PatternPages", () => new MachineConfig { PatternPages = null! } },
        { "ZeroCopyWriterOptions.ZeroCopyThreshold", () => new ZeroCopyWriterOptions { ZeroCopyThreshold = -1 } },
        { "ReceiverHandshakeOptions.HashAlgorithms", () => new ReceiverHandshakeOptions { HashAlgorithms = [] } },
        { "ReceiverHandshakeOptions.HashAlgorithms", () => new ReceiverHandshakeOptions { HashAlgorithms = null! } },
        { "LibvirtDestinationOptions.ConnectUri", () => new LibvirtDestinationOptions { ConnectUri = " " } },
        { "LibvirtDestinationOptions.RamDirectory", () => new LibvirtDestinationOptions { RamDirectory = "relative/ram" } },
        { "LibvirtDestinationOptions.MemoryBackingDirectory", () => new LibvirtDestinationOptions { MemoryBackingDirectory = "ram" } },
        { "LibvirtDestinationOptions.HookSocket", () => new LibvirtDestinationOptions { HookSocket = "hook.sock" } },
        { "LibvirtDestinationOptions.QmpDirectory", () => new LibvirtDestinationOptions { QmpDirectory = null! } },
        { "LibvirtDestinationOptions.HoldTimeout", () => new LibvirtDestinationOptions { HoldTimeout = TimeSpan.Zero } },
        { "LibvirtDestinationOptions.RunTimeout", () => new LibvirtDestinationOptions { RunTimeout = Negative } },
        { "LibvirtHandoverOptions.DestinationUri", () => new LibvirtHandoverOptions { DestinationUri = "" } },
        { "LibvirtHandoverOptions.MigrateUri", () => new LibvirtHandoverOptions { DestinationUri = "qemu:///system", MigrateUri = "host:49152" } },
        { "LibvirtHandoverOptions.QmpDirectory", () => new LibvirtHandoverOptions { DestinationUri = "qemu:///system", QmpDirectory = "qmp" } },
        { "PrivateLibvirtDaemonOptions.StartTimeout", () => new PrivateLibvirtDaemonOptions { StartTimeout = TimeSpan.Zero } },
        { "PrivateLibvirtDaemonOptions.MemoryBackingDirectory", () => new PrivateLibvirtDaemonOptions { MemoryBackingDirectory = "ram" } },
        { "TlsOptions.Trusted", () => new TestCertificates().Side("sender") with { Trusted = [] } },
        { "TlsOptions.Certificate", () => new TestCertificates().Side("sender") with { Certificate = null! } },
        { "TlsOptions.Intermediates", () => new TestCertificates().Side("sender") with { Intermediates = null! } },
        { "TlsOptions.HandshakeTimeout", () => new TestCertificates().Side("sender") with { HandshakeTimeout = TimeSpan.Zero } },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void An_invalid_option_throws_at_construction_naming_the_option(string option, Func<object> construct)
    {
        var e = Assert.ThrowsAny<ArgumentException>(construct);
        Assert.Equal(option[(option.IndexOf('.') + 1)..], e.ParamName);
        Assert.Contains(option, e.Message);
    }

    [Fact]
    public void The_message_says_what_was_given()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new SyncEngineOptions { LaunchTarget = TimeSpan.FromMilliseconds(-5) });
        Assert.StartsWith("SyncEngineOptions.LaunchTarget must not be negative, got -5 ms", e.Message);
    }

    [Fact]
    public void Defaults_are_valid_and_with_keeps_checking()
    {
        _ = new PresyncOptions();
        new PresyncOptions().Validate();
        _ = new ReceiverOptions();
        _ = new ReceiveServiceOptions();
        new SyncWindowOptions().Validate();
        new SimulationOptions().Validate();
        _ = new MachineConfig();
        Assert.Throws<ArgumentOutOfRangeException>(() => new PresyncOptions() with { BatchPages = -1 });
    }

    /// <summary>Checks across options stay in Validate(), run by whatever uses the options; they name the option too.</summary>
    [Fact]
    public void Cross_option_checks_run_at_use_and_name_the_option()
    {
        var window = new SyncWindowOptions { MinWindowBytes = 1 << 20, MaxWindowBytes = 1 << 19 };
        var e = Assert.Throws<ArgumentOutOfRangeException>(window.Validate);
        Assert.Equal(nameof(SyncWindowOptions.MaxWindowBytes), e.ParamName);
        Assert.Contains("SyncWindowOptions.MaxWindowBytes", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyncWindow(window));

        var reconnect = Reconnect() with { InitialBackoff = TimeSpan.FromSeconds(10), MaxBackoff = TimeSpan.FromSeconds(1) };
        e = Assert.Throws<ArgumentOutOfRangeException>(reconnect.Validate);
        Assert.Contains("ReconnectOptions.MaxBackoff", e.Message);

        var live = new PresyncOptions { Engine = new SyncEngineOptions { LaunchTarget = TimeSpan.Zero } };
        e = Assert.Throws<ArgumentOutOfRangeException>(live.Validate);
        Assert.Contains("PresyncOptions.Engine.LaunchTarget", e.Message);
    }

    private static ReconnectOptions Reconnect() => new(_ => Task.FromException<System.Net.Sockets.Socket>(new InvalidOperationException("not connected")));
}
