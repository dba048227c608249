// A small hypervisor manager over the KvmPresync packages (docs/EMBEDDING.md walks through it step by step):
// boots a workload guest, keeps its memory in sync with a receiver, shows the readiness estimate as rounds complete,
// launches the migration on `launch` (stdin) or --launch-after, and prints the result.
//
//   hypervisor-manager [--workload text] [--memory 256M] [--launch-after SECONDS] [--to HOST:PORT --psk-file FILE]
//
// Without --to the receiver runs in this process on loopback (a ReceiveService, as `kvmpresync receive` runs it).
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using KvmPresync.Engine;
using KvmPresync.Kvm;
using KvmPresync.Migration;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

var workload = Workload.Text;
long memory = 256L << 20;
double? launchAfter = null;
IPEndPoint? to = null;
string? pskFile = null;
for (int i = 0; i < args.Length; i++)
{
    string Value() => ++i < args.Length ? args[i] : throw new ArgumentException($"{args[i - 1]} needs a value");
    switch (args[i])
    {
        case "--workload": workload = Enum.Parse<Workload>(Value(), ignoreCase: true); break;
        case "--memory": memory = ParseSize(Value()); break;
        case "--launch-after": launchAfter = double.Parse(Value(), System.Globalization.CultureInfo.InvariantCulture); break;
        case "--to": to = IPEndPoint.Parse(Value()); break;
        case "--psk-file": pskFile = Value(); break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}
if (to is not null && pskFile is null) { Console.Error.WriteLine("--to needs --psk-file (the receiver's key)"); return 2; }

// Ctrl-C cancels: the sender aborts the session and the source guest keeps running.
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };

// 1. KVM and the guest. KvmSystem.Open checks the KVM API version and the capabilities the engine needs.
if (!KvmSystem.IsAvailable(out string why)) { Console.Error.WriteLine($"no KVM here: {why}"); return 1; }
using KvmSystem kvm = KvmSystem.Open();
using Machine guest = Machine.Boot(kvm, new MachineConfig { Workload = workload, MemorySize = memory });
guest.Start(); // the vCPU runs on its own thread from now on
Console.WriteLine($"booted a {workload} guest with {memory >> 20} MiB");

// 2. The receiver: a remote `kvmpresync receive`, or one in this process with a fresh key.
using PreSharedKey key = pskFile is not null ? PskFile.Load(pskFile) : new PreSharedKey(RandomNumberGenerator.GetBytes(32));
using var stopReceiver = new CancellationTokenSource();
var resumed = new TaskCompletionSource<MachineMigrationTarget?>(TaskCreationOptions.RunContinuationsAsynchronously);
Task receiving = Task.CompletedTask;
Socket? listener = null;
if (to is null)
{
    listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
    to = (IPEndPoint)listener.LocalEndPoint!;
    var service = new ReceiveService(key,
        layout => new MachineMigrationTarget(kvm, layout.Slots.Select(s => new RamSlot(s.SlotId, s.GuestPhysicalAddress, (long)s.SizeBytes))),
        new ReceiveServiceOptions(), new ServiceLog(line => Console.Error.WriteLine($"receiver: {line}")));
    // the destination guest is handed to us once it runs; we own it from then on
    service.SessionEnded += e => resumed.TrySetResult(e.ResumedTarget as MachineMigrationTarget);
    receiving = service.RunAsync(listener, stopReceiver.Token);
    Console.WriteLine($"receiver listening on {to}");
}

// 3. Presync: connect, then let the sender keep the receiver's copy in sync in the background.
using Socket connection = await MigrationSocket.ConnectAsync(to, cancel.Token);
var sender = new PresyncSender(new MachineMigrationSource(guest), connection, key,
    new PresyncOptions { Engine = new SyncEngineOptions { LinkBitsPerSecond = 1e9 } });
DateTime lastShown = DateTime.MinValue;
sender.RoundCompleted += r => // on the sender's thread; sync rounds come every 100 ms or so: show about one a second
{
    if (r.Phase == RoundPhase.Sync && DateTime.UtcNow - lastShown < TimeSpan.FromSeconds(1)) return;
    lastShown = DateTime.UtcNow;
    string ready = r.Readiness is not { } e ? "" : e.GivesUp
        ? " | if launched now: the convergence policy would give up"
        : $" | if launched now: launch-to-resume ≈ {e.LaunchToResumeMs:0.0} ms, downtime ≈ {e.DowntimeMs:0.0} ms, {e.Bytes / 1024.0:0} KiB";
    Console.WriteLine($"round {r.Round,4} {r.Phase,-9} dirty {r.DirtyPages,6} sent {r.SentPages,6} held {r.HeldPages,5}{ready}");
};

// 4. Launch on a command: `launch` typed on stdin, or after --launch-after seconds.
_ = Task.Run(() =>
{
    while (Console.ReadLine() is { } line)
        if (line.Trim() == "launch") { sender.Launch(); return; }
});
if (launchAfter is { } seconds)
    _ = Task.Delay(TimeSpan.FromSeconds(seconds), cancel.Token).ContinueWith(t => { if (!t.IsCanceled) sender.Launch(); }, TaskScheduler.Default);
Console.WriteLine($"pre-synchronizing to {to}; type 'launch' to migrate" + (launchAfter is { } a ? $" (or wait {a:0.#} s)" : ""));

// 5. The result: the switchover's figures, or why it failed (the source guest is running again then).
int exitCode;
try
{
    MigrationResult result = await sender.RunAsync(cancel.Token);
    if (result.Succeeded)
    {
        Console.WriteLine($"migrated: launch-to-resume {result.LaunchToResumeMs:0.0} ms, downtime {result.DowntimeMs:0.0} ms, " +
                          $"{result.SyncBytes >> 20} MiB before launch, {result.LaunchBytes >> 10} KiB after, verified {result.Verified}");
        exitCode = result.Verified ? 0 : 1;
    }
    else
    {
        Console.Error.WriteLine($"migration failed: {result.Failure} (the source guest runs on)");
        exitCode = 1;
    }
}
catch (AuthenticationFailedException e)
{
    Console.Error.WriteLine($"the receiver could not be authenticated: {e.Message}");
    exitCode = 1;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("cancelled: the session was aborted, the source guest runs on");
    exitCode = 130;
}

// 6. With the receiver in this process: the migrated guest runs here now. Show it working, then shut everything down.
if (listener is not null)
{
    if (exitCode == 0 && await resumed.Task.WaitAsync(TimeSpan.FromSeconds(10)) is { Machine: { } destination } target)
    {
        long before = destination.Telemetry.ProgressTotal;
        await Task.Delay(500);
        Console.WriteLine($"destination guest running: progress {before} -> {destination.Telemetry.ProgressTotal}");
        target.Dispose();
    }
    stopReceiver.Cancel();
    await receiving;
    listener.Dispose();
}
return exitCode;

static long ParseSize(string text)
{
    long unit = char.ToUpperInvariant(text[^1]) switch { 'G' => 1L << 30, 'M' => 1L << 20, 'K' => 1L << 10, _ => 1 };
    return long.Parse(unit == 1 ? text : text[..^1], System.Globalization.CultureInfo.InvariantCulture) * unit;
}
