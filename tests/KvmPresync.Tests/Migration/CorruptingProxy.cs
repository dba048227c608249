using System.Buffers.Binary;
using System.Net;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// A <see cref="FrameProxy"/> that forwards sender ⇄ receiver unchanged, except for one byte: in the first PageBatch that
/// carries guest page frame <c>pageNumber</c> as a Full page, one byte of that page's payload is flipped — a page
/// corrupted in flight, after the sender hashed it (the descriptor's hash is left as the sender wrote it).
/// </summary>
internal sealed class CorruptingProxy : IDisposable
{
    private const int DescriptorSize = 24, BatchPrefix = 16;
    private readonly FrameProxy _proxy;
    private readonly ulong _pageNumber;
    private readonly int _pageSize;

    public CorruptingProxy(IPEndPoint upstream, ulong pageNumber, int pageSize = 4096)
    {
        _pageNumber = pageNumber;
        _pageSize = pageSize;
        _proxy = new FrameProxy(upstream, (type, body) =>
        {
            if (type == FrameType.PageBatch && !Corrupted) TryCorrupt(body);
            return true;
        });
    }

    public IPEndPoint Endpoint => _proxy.Endpoint;

    /// <summary>True once the byte was flipped.</summary>
    public bool Corrupted { get; private set; }

    private void TryCorrupt(byte[] body)
    {
        int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(8));
        int payloads = 0;
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> d = body.AsSpan(BatchPrefix + i * DescriptorSize, DescriptorSize);
            ulong page = BinaryPrimitives.ReadUInt64LittleEndian(d);
            var kind = (PageKind)BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
            if (kind != PageKind.Full) continue;
            if (page == _pageNumber)
            {
                body[BatchPrefix + count * DescriptorSize + payloads * _pageSize + 100] ^= 0x01;
                Corrupted = true;
                return;
            }
            payloads++;
        }
    }

    public void Dispose() => _proxy.Dispose();
}
