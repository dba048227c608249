namespace KvmPresync.Wire;

/// <summary>Receiver → sender: the sender's proof verified; memory frames may follow. Empty body.</summary>
public readonly record struct AuthOk : IFrameBody<AuthOk>
{
    public const int Length = 0;

    public static FrameType Type => FrameType.AuthOk;

    public int BodyLength => Length;

    public void Write(Span<byte> body) { }

    public static AuthOk Read(ReadOnlySpan<byte> body)
    {
        new BodyReader(body, "AuthOk").End();
        return default;
    }
}
