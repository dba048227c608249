namespace KvmPresync.Cli.Repro.Libvirt;

/// <summary>The modes of <c>repro --target libvirt</c>, by name, in the order the table shows them.</summary>
public static class LibvirtReproModes
{
    /// <summary>Ours: presync with prediction over libvirt (<see cref="PresyncMode"/>).</summary>
    public const string Presync = PresyncMode.ModeName;

    /// <summary>Every implemented mode; <c>--modes</c> defaults to all of them.</summary>
    public static readonly IReadOnlyList<(string Name, Func<ILibvirtReproMode> Create)> Known =
    [
        (PresyncMode.ModeName, () => new PresyncMode()),
        (StockMigrationMode.PrecopyName, () => new StockMigrationMode(postcopy: false)),
        (StockMigrationMode.PostcopyName, () => new StockMigrationMode(postcopy: true)),
    ];

    /// <summary>The mode the slowdown and the honesty check compare against (it sends nothing before launch).</summary>
    public const string Baseline = StockMigrationMode.PrecopyName;

    /// <summary>The modes named in <paramref name="names"/>, or every known mode when null; throws on an unknown or unimplemented name.</summary>
    public static IReadOnlyList<ILibvirtReproMode> Select(IReadOnlyList<string>? names)
    {
        if (names is null) return Known.Select(k => k.Create()).ToArray();
        return names.Select(n => Known.FirstOrDefault(k => k.Name == n) is { Create: not null } k ? k.Create()
            : throw new ArgumentException($"--modes: unknown mode '{n}' for --target libvirt (known: {string.Join(", ", Known.Select(k => k.Name))})")).ToArray();
    }
}
