using KvmPresync.Fuzz;
using SharpFuzz;

// KvmPresync.Fuzz frames|handshake|receiver         — under afl-fuzz (persistent mode), input on stdin
// KvmPresync.Fuzz run frames|handshake|receiver F…  — replay files (corpus, crashes) without AFL; exit 1 on a crash
// KvmPresync.Fuzz record DIR                        — record the seed corpus from real migrations (fuzz/README.md)
if (args.Length >= 2 && args[0] == "record")
    return await SeedRecorder.RunAsync(args[1]);

if (args.Length >= 2 && args[0] == "run")
{
    Action<byte[]> replay = Targets.Get(args[1]);
    // Instrumented assemblies (build/fuzz/bin) write coverage to AFL's shared map: give them a private one outside AFL.
    unsafe { SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(1 << 16); }
    int crashes = 0, runs = 0;
    foreach (string path in args.Skip(2).SelectMany(a => Directory.Exists(a) ? Directory.GetFiles(a).Order() : (IEnumerable<string>)[a]))
    {
        runs++;
        try
        {
            replay(File.ReadAllBytes(path));
            if (Targets.LastReceive is { } r)
                Console.WriteLine($"{Path.GetFileName(path)}: {(r.Resumed ? "resumed, verified" : $"rejected in {r.FailedIn}: {r.Failure}")}");
        }
        catch (Exception e)
        {
            crashes++;
            Console.WriteLine($"CRASH {path}: {e}");
        }
    }
    Console.WriteLine($"{args[1]}: {runs} input(s), {crashes} crash(es)");
    return crashes == 0 ? 0 : 1;
}

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: KvmPresync.Fuzz frames|handshake|receiver | run TARGET FILE|DIR... | record DIR");
    return 2;
}
Action<byte[]> target = Targets.Get(args[0]);
Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target(buffer.ToArray());
});
return 0;
