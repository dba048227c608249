using System.Runtime.ExceptionServices;

namespace KvmPresync.Migration;

/// <summary>
/// One call made on a thread started in advance, while the caller goes on with other work; <see cref="Wait"/> returns its
/// result (or rethrows its exception). The switchover saves the paused source's vCPU/device state this way while the
/// final delta is sent: a thread-pool hop can wait tens of ms under load, creating a thread costs tenths of a ms, and
/// the state save itself takes 0.1–0.3 ms once its code is warm (the source warms it on a scratch VM; cold, the first save
/// took 2–3 ms of the downtime). Not generic, so
/// <c>JitWarmup</c> compiles it ahead.
/// </summary>
internal sealed class StandbyCall : IDisposable
{
    private readonly ManualResetEventSlim _go = new(false);
    private readonly ManualResetEventSlim _done = new(false);
    private Func<byte[]>? _call;
    private byte[]? _result;
    private ExceptionDispatchInfo? _error;
    private int _state; // 0 idle, 1 started, 2 disposed

    public StandbyCall(string name)
    {
        var thread = new Thread(Run) { IsBackground = true, Name = name };
        thread.Start();
    }

    /// <summary>Starts <paramref name="call"/> on the standby thread; once only.</summary>
    public void Start(Func<byte[]> call)
    {
        ArgumentNullException.ThrowIfNull(call);
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0) throw new InvalidOperationException("the standby call was already started or disposed");
        _call = call;
        _go.Set();
    }

    /// <summary>Waits for the call started by <see cref="Start"/> and returns its result (or rethrows what it threw).</summary>
    public byte[] Wait()
    {
        if (Volatile.Read(ref _state) != 1) throw new InvalidOperationException("the standby call was not started");
        _done.Wait();
        _error?.Throw();
        return _result!;
    }

    /// <summary>If the call was started, waits for it to end, ignoring its outcome (before undoing what it depends on).</summary>
    public void WaitIfStarted()
    {
        if (Volatile.Read(ref _state) == 1) _done.Wait();
    }

    private void Run()
    {
        _go.Wait();
        if (_call is not { } call) return; // disposed unused
        try
        {
            _result = call();
        }
        catch (Exception e)
        {
            _error = ExceptionDispatchInfo.Capture(e);
        }
        _done.Set();
    }

    /// <summary>Ends the standby thread if the call was never started.</summary>
    public void Dispose()
    {
        if (Interlocked.CompareExchange(ref _state, 2, 0) == 0) _go.Set();
    }
}
