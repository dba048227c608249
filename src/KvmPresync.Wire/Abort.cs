using System.Text;

namespace KvmPresync.Wire;

/// <summary>
/// Either side: the migration stops. Body (8 + message length bytes):
/// <c>u32 reason (AbortReason), u32 message length (≤ WireLimits.MaxAbortMessageBytes), UTF-8 message</c>.
/// Messages longer than the cap are truncated (at a character boundary) when written.
/// </summary>
public sealed record Abort(AbortReason Reason, string Message) : IFrameBody<Abort>
{
    public const int FixedLength = 8;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static FrameType Type => FrameType.Abort;

    public int BodyLength => FixedLength + MessageBytes().Length;

    public void Write(Span<byte> body)
    {
        if (Reason == AbortReason.Invalid || !Enum.IsDefined(Reason))
            throw new ArgumentException($"abort reason {(uint)Reason} is not a defined AbortReason");
        byte[] message = MessageBytes();
        var w = new BodyWriter(body[..(FixedLength + message.Length)]);
        w.U32((uint)Reason);
        w.U32((uint)message.Length);
        w.Bytes(message);
    }

    public static Abort Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "Abort");
        var reason = r.Enum32<AbortReason>("reason", ProtocolError.InvalidEnumValue);
        uint length = r.U32("messageLength");
        if (length > WireLimits.MaxAbortMessageBytes)
            throw new ProtocolException(ProtocolError.FrameTooLarge, "Abort.messageLength", length,
                $"Abort: message of {length} bytes exceeds the {WireLimits.MaxAbortMessageBytes}-byte limit");
        if (r.Remaining != length)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "Abort.messageLength", length,
                $"Abort: message length says {length} bytes, the body holds {r.Remaining}");
        string message;
        try
        {
            message = StrictUtf8.GetString(r.Bytes((int)length, "message"));
        }
        catch (DecoderFallbackException e)
        {
            throw new ProtocolException(ProtocolError.InvalidUtf8, "Abort.message", null, "Abort: message is not valid UTF-8", e);
        }
        r.End();
        return new Abort(reason, message);
    }

    /// <summary>
    /// The exception a side throws on receiving this Abort: <see cref="AuthenticationFailedException"/> when the
    /// peer refused our proof, otherwise a <see cref="ProtocolException"/> with <see cref="ProtocolError.PeerAborted"/>.
    /// </summary>
    public ProtocolException ToException() =>
        Reason == AbortReason.AuthenticationFailed
            ? new AuthenticationFailedException("Abort.reason", $"the peer aborted: authentication failed ({Message}) — the two sides hold different pre-shared keys") { FromPeerAbort = true }
            : new ProtocolException(Reason == AbortReason.VersionMismatch ? ProtocolError.VersionMismatch : ProtocolError.PeerAborted,
                "Abort.reason", Reason, $"the peer aborted the migration: {Reason}: {Message}") { AbortReason = Reason, FromPeerAbort = true };

    private byte[] MessageBytes()
    {
        string text = Message ?? "";
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length <= WireLimits.MaxAbortMessageBytes) return bytes;
        // Cut at a character boundary: back off past UTF-8 continuation bytes (10xxxxxx).
        int cut = WireLimits.MaxAbortMessageBytes;
        while (cut > 0 && (bytes[cut] & 0xC0) == 0x80) cut--;
        return bytes[..cut];
    }
}
