using System.Diagnostics;
using System.Reflection;
using KvmPresync.Libvirt.Guest;

namespace KvmPresync.Libvirt.Testbed;

/// <summary>
/// A fresh Linux guest (the project's image, <c>make guest-image</c>) running one workload as a domain of a testbed's
/// source instance, defined from contrib/linux-guest-domain.xml (embedded): TCG, 256 MiB of shared file-backed RAM,
/// heartbeats on the serial console, which goes to a file. The kernel and initramfs are staged into a directory of
/// its own that libvirt-qemu can read, one copy per instance as on two hosts (each instance's security driver labels
/// its own copy: libvirt refuses to relabel a file another instance's QEMU uses as a different user); the console files
/// live there too. The guest's heartbeats are read from the
/// source console and, after a migration to <see cref="DestinationXml()"/>, from the destination console
/// (<see cref="Console"/> follows both). Dispose removes the domain from both instances and deletes the directory.
/// </summary>
public sealed class LinuxGuestDomain : IDisposable
{
    /// <summary>The image files (build/guest-image/).</summary>
    public const string KernelFile = "vmlinuz", InitramfsFile = "initramfs.cpio.gz";

    private const string SourceSide = "source", DestinationSide = "destination";

    private readonly LibvirtTestbed _testbed;
    private readonly LibvirtConnection _source;
    private bool _disposed;

    private LinuxGuestDomain(LibvirtTestbed testbed, string name, string directory, LibvirtConnection source)
    {
        _testbed = testbed;
        Name = name;
        Directory = directory;
        _source = source;
    }

    public string Name { get; }

    /// <summary>The guest's own directory: staged kernel and initramfs, both console files.</summary>
    public string Directory { get; }

    public string SourceConsolePath => Path.Combine(Directory, "console.source.log");

    public string DestinationConsolePath => Path.Combine(Directory, "console.destination.log");

    /// <summary>The heartbeat chain from both consoles, source first; fed by <see cref="PollConsole"/>.</summary>
    public LinuxGuestConsole Console { get; } = new();

    /// <summary>The domain on the source instance (running after <see cref="Start"/>).</summary>
    public LibvirtDomain SourceDomain { get; private set; } = null!;

    /// <summary>Since <see cref="Start"/> asked libvirt to start the domain.</summary>
    public Stopwatch SinceStart { get; } = new();

    /// <summary>The domain template (contrib/linux-guest-domain.xml) with its @PLACEHOLDERS@.</summary>
    public static string Template()
    {
        using Stream s = typeof(LinuxGuestDomain).Assembly.GetManifestResourceStream("linux-guest-domain.xml")
            ?? throw new InvalidOperationException("linux-guest-domain.xml is not embedded in KvmPresync.Libvirt");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>Why <paramref name="imageDirectory"/> is not a guest image (a file missing), or null.</summary>
    public static string? ImageProblem(string imageDirectory) =>
        new[] { KernelFile, InitramfsFile }.Select(f => Path.Combine(imageDirectory, f)).FirstOrDefault(f => !File.Exists(f)) is { } missing
            ? $"{missing} is missing: build the Linux guest image with `make guest-image`"
            : null;

    /// <summary>
    /// Defines and starts a fresh guest running <paramref name="workload"/> (idle, text, audio, movie) with
    /// <paramref name="seed"/> on <paramref name="testbed"/>'s source instance. <paramref name="editXml"/> may add to the
    /// domain XML (e.g. the presync tracker in QEMU's environment) before it is defined.
    /// </summary>
    public static LinuxGuestDomain Start(LibvirtTestbed testbed, string imageDirectory, string workload, int seed = 1, string? name = null,
        Func<string, string>? editXml = null)
    {
        if (ImageProblem(imageDirectory) is { } problem) throw new FileNotFoundException(problem);
        name ??= $"kp-{workload}-{Guid.NewGuid():N}"[..16];
        string dir = System.IO.Directory.CreateTempSubdirectory("kp-guest-").FullName;
        HostProcesses.SetMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        LibvirtConnection? source = null;
        LinuxGuestDomain? guest = null;
        try
        {
            source = testbed.Source.Connect();
            guest = new LinuxGuestDomain(testbed, name, dir, source);
            foreach (string side in new[] { SourceSide, DestinationSide })
            {
                System.IO.Directory.CreateDirectory(Path.Combine(dir, side));
                foreach (string f in new[] { KernelFile, InitramfsFile }) File.Copy(Path.Combine(imageDirectory, f), Path.Combine(dir, side, f));
            }
            string xml = Template().Replace("@NAME@", name).Replace("@KERNEL@", Path.Combine(dir, SourceSide, KernelFile))
                .Replace("@INITRD@", Path.Combine(dir, SourceSide, InitramfsFile)).Replace("@WORKLOAD@", workload)
                .Replace("@SEED@", seed.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .Replace("@SERIAL_LOG@", guest.SourceConsolePath);
            guest.SourceDomain = source.DefineDomain(editXml?.Invoke(xml) ?? xml);
            guest.SinceStart.Start();
            guest.SourceDomain.Start();
            return guest;
        }
        catch
        {
            if (guest is not null) guest.Dispose();
            else
            {
                source?.Dispose();
                System.IO.Directory.Delete(dir, recursive: true);
            }
            throw;
        }
    }

    /// <summary>
    /// The XML for the destination (VIR_MIGRATE_PARAM_DEST_XML): the running domain's migratable XML with the console
    /// going to <see cref="DestinationConsolePath"/>, so heartbeats after the switchover prove the destination wrote them,
    /// and the destination's own copy of the kernel and initramfs.
    /// </summary>
    public string DestinationXml() => DestinationXml(SourceDomain.GetXml(DomainXmlFlags.Secure | DomainXmlFlags.Migratable));

    /// <summary>
    /// The same edit of a migratable XML the caller already has (a presync source reads it over its own connection, which
    /// survives a libvirtd restart that this guest's connection does not).
    /// </summary>
    public string DestinationXml(string migratableXml) =>
        migratableXml
            .Replace(SourceConsolePath, DestinationConsolePath, StringComparison.Ordinal)
            .Replace(Path.Combine(Directory, SourceSide) + "/", Path.Combine(Directory, DestinationSide) + "/", StringComparison.Ordinal);

    /// <summary>Reads what both consoles gained since the last poll: the source's, then the destination's.</summary>
    public void PollConsole()
    {
        Console.Poll(SourceConsolePath);
        Console.Poll(DestinationConsolePath);
    }

    /// <summary>
    /// Polls the consoles every <paramref name="interval"/> (default 50 ms) until <paramref name="done"/> holds; throws
    /// <see cref="TimeoutException"/> (with the console's tail) when <paramref name="timeout"/> passes, and
    /// <see cref="InvalidOperationException"/> when the workload ended or the source domain stopped first (unless
    /// <paramref name="sourceMayStop"/>: after a migration the source is expected to be gone).
    /// </summary>
    public async Task WaitAsync(Func<LinuxGuestConsole, bool> done, TimeSpan timeout, string what,
        bool sourceMayStop = false, TimeSpan? interval = null, CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            PollConsole();
            if (done(Console)) return;
            if (Console.ExitLine is { } exit)
                throw new InvalidOperationException($"the guest's workload ended before {what}: {exit}\n{ConsoleTail()}");
            if (!sourceMayStop && SourceState() is not DomainState.Running and var state)
                throw new InvalidOperationException($"the source domain is {state} before {what}; QEMU's log:\n{PrivateLibvirtDaemon.Tail(_testbed.Source.QemuLogPath(Name), 10)}\n{ConsoleTail()}");
            if (watch.Elapsed > timeout)
                throw new TimeoutException($"no {what} within {timeout.TotalSeconds:0} s\n{ConsoleTail()}");
            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(50), cancellationToken);
        }
    }

    private DomainState SourceState()
    {
        try { return SourceDomain.State; }
        catch (LibvirtException) { return DomainState.NoState; }
    }

    /// <summary>The last lines of both console files, for error messages.</summary>
    public string ConsoleTail(int lines = 12)
    {
        static string Last(string path, int n) =>
            File.Exists(path) ? string.Join('\n', File.ReadAllText(path).Split('\n').TakeLast(n)) : "(none)";
        return $"source console tail:\n{Last(SourceConsolePath, lines)}\ndestination console tail:\n{Last(DestinationConsolePath, lines)}";
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            Remove(_source);
            using (LibvirtConnection destination = _testbed.Destination.Connect()) Remove(destination);
        }
        catch (LibvirtException) { } // a daemon that is gone took its domains with it (its own Dispose kills QEMUs)
        finally
        {
            SourceDomain?.Dispose();
            _source.Dispose();
            try { System.IO.Directory.Delete(Directory, recursive: true); }
            catch (IOException) { HostProcesses.Run("rm", "-rf", Directory); }
        }
    }

    private void Remove(LibvirtConnection connection)
    {
        LibvirtDomain domain;
        try { domain = connection.LookupDomain(Name); }
        catch (LibvirtException e) when (e.Code == ErrorCodes.NoDomain) { return; }
        using (domain)
        {
            if (domain.State is not DomainState.Shutoff) domain.Destroy();
            try { domain.Undefine(); }
            catch (LibvirtException e) when (e.Code is ErrorCodes.NoDomain or ErrorCodes.OperationInvalid) { } // transient: gone with Destroy
        }
    }
}
