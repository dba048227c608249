using System.CommandLine;
using System.Text.RegularExpressions;

namespace KvmPresync.Cli;

/// <summary>
/// A command line that did not parse: one line per error in the CLI's own words, naming the option, and where the options
/// are listed — not the parser's .NET type names (<c>'2s' … as expected type 'System.Double'</c>) followed by the whole help.
/// </summary>
internal static partial class UsageErrors
{
    public static int Report(ParseResult parsed)
    {
        Console.Out.Flush();
        foreach (var error in parsed.Errors) Console.Error.WriteLine($"kvmpresync: error: {Describe(error.Message)}");
        var names = new List<string>(); // the command's path below the root, e.g. "trace info"
        for (System.CommandLine.Parsing.SymbolResult? r = parsed.CommandResult; r is not null; r = r.Parent)
            if (r is System.CommandLine.Parsing.CommandResult { Command: not RootCommand } c) names.Insert(0, c.Command.Name);
        string command = string.Join(' ', names);
        Console.Error.WriteLine($"run 'kvmpresync {(command.Length > 0 ? command + " " : "")}--help' for the options");
        return ExitCodes.Usage;
    }

    /// <summary>The parser's message, with a value that is not of its option's type said in words.</summary>
    private static string Describe(string message)
    {
        Match m = TypeMismatch().Match(message);
        if (!m.Success) return message;
        string option = m.Groups[2].Value, type = m.Groups[3].Value;
        string kind = type.Contains("System.Double") ? option.EndsWith("-seconds", StringComparison.Ordinal) ? "a number of seconds" : "a number"
            : type.Contains("System.Int32") || type.Contains("System.Int64") ? "a whole number"
            : type.Contains("System.Boolean") ? "true or false"
            : "a valid value";
        return $"{option}: '{m.Groups[1].Value}' is not {kind}";
    }

    [GeneratedRegex(@"^Cannot parse argument '(.*)' for option '([^']+)' as expected type '([^']+)'\.?$")]
    private static partial Regex TypeMismatch();
}
