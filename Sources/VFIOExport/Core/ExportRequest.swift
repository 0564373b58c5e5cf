#if canImport(Glibc)
import Glibc
#endif

/// One block request as a frontend received it, in bytes (NBD's offset and length; ublk's
/// sectors × 512). Plain data: starting it allocates nothing.
public struct ExportRequest: Sendable, Equatable {
    public enum Kind: Int, Sendable, CaseIterable, Codable {
        case read, write, flush, trim, writeZeroes

        /// The name used in status and metrics (`read`, `write`, `flush`, `trim`, `write_zeroes`).
        public var name: String {
            switch self {
            case .read: "read"
            case .write: "write"
            case .flush: "flush"
            case .trim: "trim"
            case .writeZeroes: "write_zeroes"
            }
        }
    }

    public var kind: Kind
    /// Byte offset in the export; must be a multiple of the block size (0 for flush).
    public var offset: UInt64
    /// Bytes; a multiple of the block size, 1 … ``ExportGeometry/maxTransfer`` for read and
    /// write, up to the end of the export for trim and write-zeroes (0 for flush).
    public var length: UInt64
    /// Force Unit Access: the write is on the media when it completes (NVMe Write with FUA).
    public var fua: Bool

    public init(kind: Kind, offset: UInt64 = 0, length: UInt64 = 0, fua: Bool = false) {
        self.kind = kind
        self.offset = offset
        self.length = length
        self.fua = fua
    }
}

/// How a request ended, as the errno a frontend hands its client (0: success). NBD sends it as
/// the reply's error; ublk commits it as `-errno`.
public struct ExportStatus: Sendable, Equatable, CustomStringConvertible {
    public let errno: Int32

    public init(errno: Int32) { self.errno = errno }

    public static let ok = ExportStatus(errno: 0)
    /// Out of range, misaligned, oversized, or a kind the export does not serve.
    public static let invalid = ExportStatus(errno: EINVAL)
    /// A write to a read-only export.
    public static let readOnly = ExportStatus(errno: EPERM)
    /// The device failed the command (or timed out, or was given up on).
    public static let ioError = ExportStatus(errno: EIO)
    /// The export is shutting down: no new request starts.
    public static let shuttingDown = ExportStatus(errno: ESHUTDOWN)

    public var isSuccess: Bool { errno == 0 }

    public var description: String { errno == 0 ? "ok" : String(cString: strerror(errno)) }
}
