namespace KvmPresync.Wire;

/// <summary>What went wrong on the wire. Carried by every <see cref="ProtocolException"/>.</summary>
public enum ProtocolError
{
    Invalid = 0,
    /// <summary>The peer closed the connection exactly at a frame boundary (no partial frame).</summary>
    PeerClosed = 1,
    /// <summary>The connection ended in the middle of a frame.</summary>
    Truncated = 2,
    UnknownFrameType = 3,
    /// <summary>A flags or reserved field holds bits this version does not define.</summary>
    UnknownFlags = 4,
    /// <summary>A frame's declared body length exceeds the cap for its type (checked before any read or allocation).</summary>
    FrameTooLarge = 5,
    /// <summary>A body length does not equal what the body's own fields imply.</summary>
    BodyLengthMismatch = 6,
    BadMagic = 7,
    VersionMismatch = 8,
    BadPageSize = 9,
    TooManySlots = 10,
    SlotMisaligned = 11,
    SlotOverlap = 12,
    SlotSizeInvalid = 13,
    LayoutTooLarge = 14,
    DuplicateSlotId = 15,
    UnknownHashAlgorithm = 16,
    UnknownOption = 17,
    PageOutOfRange = 18,
    UnknownPageKind = 19,
    TooManyPages = 20,
    /// <summary>An enum field holds 0 (Invalid) or a value this version does not define.</summary>
    InvalidEnumValue = 21,
    InvalidUtf8 = 22,
    /// <summary>A known frame arrived in a state where it is not allowed (e.g. PageBatch before authentication).</summary>
    UnexpectedFrame = 23,
    AuthenticationFailed = 24,
    /// <summary>The peer sent an Abort frame; <see cref="ProtocolException.AbortReason"/> holds its reason.</summary>
    PeerAborted = 25,
    /// <summary>The receiver refused the announced memory layout (e.g. it does not match the destination VM).</summary>
    LayoutRejected = 26,
    /// <summary>The peer answered with an option set or parameter it was not offered.</summary>
    NegotiationFailed = 27,
    /// <summary>The transport failed (reset, broken pipe); the inner exception holds the socket error.</summary>
    ConnectionFailed = 28,
    /// <summary>The pre-shared key file is missing, unreadable, too permissive or holds too short a key.</summary>
    KeyFileRejected = 29,
    /// <summary>
    /// The TLS layer failed: the handshake (a certificate the other side or this side refused, a peer that does not
    /// speak TLS, or a plaintext peer talking to a TLS side), or a certificate / key / CA file that cannot be used.
    /// Not retryable: a new connection fails the same way until the configuration is fixed.
    /// </summary>
    TlsFailed = 30,

    /// <summary>A field holds a value its frame's rules forbid (e.g. a PageHashes chunk that does not continue the previous one).</summary>
    InvalidField = 31,
}
