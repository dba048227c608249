using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using KvmPresync.Kvm;
using KvmPresync.Migration;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Cli.Commands;

/// <summary><c>kvmpresync receive</c>: waits for one migration, verifies it, resumes the guest and keeps it running.</summary>
internal static class ReceiveCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen", "-l") { Description = "ADDRESS:PORT to listen on, e.g. 127.0.0.1:7700", Required = true };
        var psk = MigrationOptions.PskFile(required: true);
        var link = MigrationOptions.LinkRate();
        var maxMemory = new Option<string?>("--max-memory")
        {
            Description = "Refuse senders announcing more guest memory than this, e.g. 16G; default: this host's MemAvailable (/proc/meminfo) when receive starts",
        };
        var runFor = new Option<double?>("--run-seconds") { Description = "After the guest resumed, keep it running this many seconds, then stop (default: until Ctrl-C)" };
        var json = new Option<string?>("--json") { Description = "Write the receive result as JSON to this file" };
        var cmd = new Command("receive", "Receive a pre-synchronized migration: authenticate, fill guest memory, verify, resume the guest")
        {
            listen, psk, link, maxMemory, runFor, json,
        };
        var tls = new TlsOptionsBinding(); // --tls-cert/--tls-key/--tls-ca
        tls.AddTo(cmd);
        cmd.SetAction((r, ct) => RunAsync(MigrationOptions.ParseEndpoint(r.GetValue(listen)!, "--listen"), r.GetValue(psk)!,
            MigrationOptions.ParseLinkRate(r.GetValue(link)!), r.GetValue(maxMemory) is { } max ? Units.ParseSize(max) : HostMemory.AvailableBytes(), r.GetValue(runFor), r.GetValue(json), ct, tls.Load(r)));
        return cmd;
    }

    private static async Task<int> RunAsync(IPEndPoint endpoint, string pskPath, double linkRate, long maxMemory, double? runSeconds, string? json, CancellationToken ct, TlsOptions? tls = null)
    {
        using PreSharedKey key = MigrationOptions.LoadKey(pskPath);
        using var kvm = KvmSystem.Open();
        using Socket listener = MigrationSocket.Listen(endpoint);
        Console.WriteLine($"listening on {listener.LocalEndPoint} (guests up to {Units.FormatBytes(maxMemory)}{(tls is null ? "" : "; mutual TLS 1.3 required")})");
        using Socket connection = await MigrationSocket.AcceptAsync(listener, ct);
        Console.WriteLine($"connection from {connection.RemoteEndPoint}");
        MachineMigrationTarget? target = null;
        var clock = Stopwatch.StartNew();
        ReceiveResult result = await PresyncReceiver.RunAsync(connection, key, layout => target = new MachineMigrationTarget(kvm,
                layout.Slots.Select(s => new RamSlot(s.SlotId, s.GuestPhysicalAddress, (long)s.SizeBytes))),
            new ReceiverOptions { LinkBitsPerSecond = linkRate, MaxMemoryBytes = maxMemory, Tls = tls }, ct);
        if (json is not null)
            await File.WriteAllTextAsync(json, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }), ct);
        if (!result.Resumed)
        {
            Console.Error.WriteLine($"kvmpresync: receive failed: {result.Failure}");
            return ExitCodes.MigrationFailed;
        }
        using (target)
        {
            Machine machine = target!.Machine!;
            Console.WriteLine($"guest resumed here after {clock.Elapsed.TotalSeconds:0.0} s: {result.PagesApplied} pages applied, memory digest verified, resume took {result.ResumeMs:0.0} ms");
            var view = LiveView.ForConsole();
            var ran = Stopwatch.StartNew();
            long lastProgress = machine.Telemetry.ProgressTotal;
            while (!ct.IsCancellationRequested && !machine.Completion.IsCompleted && (runSeconds is null || ran.Elapsed.TotalSeconds < runSeconds))
            {
                try { await Task.Delay(1000, ct); } catch (OperationCanceledException) { break; }
                long p = machine.Telemetry.ProgressTotal;
                view.Update($"{ran.Elapsed.TotalSeconds,6:0.0}s  progress {p - lastProgress,5}/s  heartbeats {machine.Telemetry.HeartbeatCount}  continuity errors {machine.Telemetry.ContinuityErrors}  self-check errors {machine.Telemetry.SelfCheckErrors}");
                lastProgress = p;
            }
            view.Done();
            if (!machine.Completion.IsCompleted) machine.Pause();
            Console.WriteLine($"destination guest: heartbeats {machine.Telemetry.HeartbeatCount}, last seq {machine.Telemetry.LastHeartbeat?.Seq}, continuity errors {machine.Telemetry.ContinuityErrors}, self-check errors {machine.Telemetry.SelfCheckErrors}");
            return GuestRun.Report(machine, view);
        }
    }
}
