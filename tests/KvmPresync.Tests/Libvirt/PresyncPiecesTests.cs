using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using KvmPresync.Libvirt.Presync;
using KvmPresync.Tests.ProcessMemory;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Libvirt;

/// <summary>
/// The pieces of libvirt presync that need no daemon: the destination XML, the domain check, the hook program's
/// protocol (against a unix socket this test serves, as the receiver would), and protocol 1.2's DestinationReady frame.
/// </summary>
public sealed class PresyncPiecesTests
{
    private const string Uuid = "4682d4b7-2a8e-416c-b295-6c00f1f78c0f";

    private static string DomainXml(string extra = "") => $"""
        <domain type='qemu'>
          <name>g</name>
          <uuid>{Uuid}</uuid>
          <memory unit='KiB'>262144</memory>
          <os><type arch='x86_64' machine='pc'>hvm</type><cmdline>console=ttyS0 pti=on</cmdline></os>
          {extra}
        </domain>
        """;

    [Fact]
    public void DestinationXml_names_the_session_and_adds_one_extra_monitor_even_when_applied_twice()
    {
        string once = PresyncDomainXml.ForDestination(DomainXml(), "00ff", "/run/kp/qmp");
        string twice = PresyncDomainXml.ForDestination(once, "abcd", "/run/kp/qmp");
        Assert.Equal("00ff", PresyncDomainXml.SessionOf(once));
        Assert.Equal("abcd", PresyncDomainXml.SessionOf(twice));
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(twice, "<kp:presync"));
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(twice, "value=\"-qmp\""));
        Assert.Contains($"unix:/run/kp/qmp/{Uuid}.sock,server=on,wait=off", twice, StringComparison.Ordinal);
        Assert.Null(PresyncDomainXml.SessionOf(DomainXml()));
        Assert.Throws<ArgumentException>(() => PresyncDomainXml.ForDestination(DomainXml(), "not-hex", "/q"));
    }

    [Fact]
    public void Check_names_each_missing_requirement_with_the_xml_that_fixes_it()
    {
        IReadOnlyList<DomainFinding> bare = DomainCheck.CheckXml(DomainXml(), "/usr/local/lib/kvmpresync/libkvmpresync-track.so");
        DomainFinding ram = bare.Single(f => f.Requirement == "RAM in a shared file");
        Assert.False(ram.Met);
        Assert.Contains("<access mode='shared'/>", ram.Fix, StringComparison.Ordinal);
        DomainFinding tracker = bare.Single(f => f.Requirement == "dirty tracking inside QEMU");
        Assert.False(tracker.Met);
        Assert.Contains("LD_PRELOAD' value='/usr/local/lib/kvmpresync/libkvmpresync-track.so'", tracker.Fix, StringComparison.Ordinal);
        Assert.True(bare.Single(f => f.Requirement.StartsWith("pti=on", StringComparison.Ordinal)).Met);

        string ready = DomainXml("""
            <memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>
            <qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
              <qemu:env name='LD_PRELOAD' value='/x/libkvmpresync-track.so'/>
              <qemu:env name='KVMPRESYNC_TRACK_PATH' value='/dev/shm/*/pc.ram'/>
            </qemu:commandline>
            """);
        Assert.All(DomainCheck.CheckXml(ready, "/x/libkvmpresync-track.so"), f => Assert.True(f.Met, f.Requirement));
        Assert.False(DomainCheck.CheckXml(DomainXml("<cpu><numa><cell id='0' cpus='0' memory='262144'/></numa></cpu>"), "/x")
            .Single(f => f.Requirement.StartsWith("one RAM block", StringComparison.Ordinal)).Met);
    }

    [Fact]
    public async Task Hook_acts_only_for_presync_domains_and_maps_the_receivers_answer_to_its_exit_code()
    {
        string hook = ProcessTrackingRequirement.NativeOrFail("kvmpresync-libvirt-hook");
        string dir = Directory.CreateTempSubdirectory("kp-hook-").FullName;
        try
        {
            string socket = Path.Combine(dir, "hook.sock");
            string presync = PresyncDomainXml.ForDestination(DomainXml(), "c0ffee", "/run/kp/qmp").Replace("<domain ", "<domain id='7' ", StringComparison.Ordinal);

            // not a presync domain: exits 0 without asking (nobody listens on the socket)
            Assert.Equal((0, ""), await RunHookAsync(hook, socket, "start", DomainXml()));
            // other operations: nothing to do
            Assert.Equal((0, ""), await RunHookAsync(hook, socket, "stopped", presync));
            // no receiver: a presync destination must not start without its memory
            (int code, string err) = await RunHookAsync(hook, socket, "start", presync);
            Assert.Equal(1, code);
            Assert.Contains("no KvmPresync receiver answers", err, StringComparison.Ordinal);

            foreach ((string answer, int expected) in new[] { ("ok", 0), ("fail no presync session c0ffee", 1) })
            {
                using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                File.Delete(socket);
                listener.Bind(new UnixDomainSocketEndPoint(socket));
                listener.Listen(1);
                Task<string> served = ServeOnceAsync(listener, answer);
                (code, err) = await RunHookAsync(hook, socket, "started", presync);
                Assert.Equal($"started c0ffee {Uuid} 7", await served);
                Assert.Equal(expected, code);
                if (expected != 0) Assert.Contains("no presync session c0ffee", err, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Hook_removes_the_guard_argument_at_migrate_begin_so_only_a_hooked_destination_starts_QEMU()
    {
        string hook = ProcessTrackingRequirement.NativeOrFail("kvmpresync-libvirt-hook");
        string presync = PresyncDomainXml.ForDestination(DomainXml(), "c0ffee", "/run/kp/qmp");
        Assert.Contains(PresyncDomainXml.RequiresHookArgument, presync, StringComparison.Ordinal);
        string libvirtStyle = presync.Replace($"<qemu:arg value=\"{PresyncDomainXml.RequiresHookArgument}\" />",
            $"<qemu:arg value='{PresyncDomainXml.RequiresHookArgument}'/>", StringComparison.Ordinal);
        foreach (string xml in new[] { presync, libvirtStyle })
        {
            var psi = new ProcessStartInfo(hook) { RedirectStandardInput = true, RedirectStandardOutput = true };
            foreach (string a in new[] { "--socket", "/nonexistent", "g", "migrate", "begin", "-" }) psi.ArgumentList.Add(a);
            using Process p = Process.Start(psi)!;
            await p.StandardInput.WriteAsync(xml);
            p.StandardInput.Close();
            string output = await p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            await p.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(0, p.ExitCode);
            Assert.DoesNotContain(PresyncDomainXml.RequiresHookArgument, output, StringComparison.Ordinal);
            Assert.Equal("c0ffee", PresyncDomainXml.SessionOf(output)); // the rest is intact XML
            Assert.Contains("-qmp", output, StringComparison.Ordinal);
        }
        // an ordinary domain's migration: no output, so libvirt keeps its XML
        var plain = new ProcessStartInfo(hook) { RedirectStandardInput = true, RedirectStandardOutput = true };
        foreach (string a in new[] { "g", "migrate", "begin", "-" }) plain.ArgumentList.Add(a);
        using Process q = Process.Start(plain)!;
        await q.StandardInput.WriteAsync(DomainXml());
        q.StandardInput.Close();
        Assert.Equal("", await q.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken));
        await q.WaitForExitAsync(TestContext.Current.CancellationToken);
    }

    private static async Task<string> ServeOnceAsync(Socket listener, string answer)
    {
        using Socket client = await listener.AcceptAsync(TestContext.Current.CancellationToken);
        using var stream = new NetworkStream(client);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        string line = await reader.ReadLineAsync(TestContext.Current.CancellationToken) ?? "";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(answer + "\n"), TestContext.Current.CancellationToken);
        return line;
    }

    private static async Task<(int Code, string Stderr)> RunHookAsync(string hook, string socket, string op, string xml)
    {
        var psi = new ProcessStartInfo(hook) { RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in new[] { "--socket", socket, "g", op, "begin", "-" }) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        await p.StandardInput.WriteAsync(xml);
        p.StandardInput.Close();
        string err = await p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await p.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (p.ExitCode, err.Trim());
    }

    [Fact]
    public void DestinationReady_round_trips_and_DeferredHandover_needs_protocol_1_2()
    {
        var b = new byte[DestinationReady.Length];
        new DestinationReady(123456789).Write(b);
        Assert.Equal(123456789UL, DestinationReady.Read(b).ReceiverTimestampNs);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => DestinationReady.Read(b.AsSpan(0, 7))).Error);
        Assert.Equal(new ProtocolVersion(1, 2), ProtocolVersion.DeferredHandover);
        Assert.True(ProtocolVersion.Current.Minor >= ProtocolVersion.DeferredHandover.Minor); // 1.3 (CompressedPages) speaks 1.2 too
        Assert.True(ProtocolVersion.DeferredHandover.Minor > ProtocolVersion.Resumable.Minor);
        Assert.Equal(HelloOptions.DeferredHandover, HelloOptions.All & HelloOptions.DeferredHandover);
        new FrameHeader(FrameType.DestinationReady, 0, DestinationReady.Length).Validate(4096);
        Assert.Throws<ProtocolException>(() => new FrameHeader(FrameType.DestinationReady, 0, 9).Validate(4096));
    }
}
