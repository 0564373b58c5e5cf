import Synchronization
import SystemPackage

/// One interrupt vector as a file the event loop waits on: an eventfd the kernel signals
/// (VFIO), or UIO's `/dev/uioN`. ``count(read:)`` turns what a read returns into how many
/// times it fired since the last read.
public final class InterruptSource: Sendable, CustomStringConvertible {
    public let index: IRQIndex
    public let vector: Int
    public let fd: FileDescriptor
    /// Bytes a read returns: 8 for an eventfd, 4 for UIO's counter.
    let width: Int
    /// False when the file belongs to the backend (UIO) rather than to this source.
    let ownsFile: Bool
    /// UIO's counter is the device's running total; this is the total the last read returned.
    private let lastTotal: Atomic<UInt32>

    /// `total` is UIO's running total when the source is made (ignored for an eventfd).
    init(index: IRQIndex, vector: Int, fd: FileDescriptor, width: Int, ownsFile: Bool, total: UInt32 = 0) {
        self.index = index
        self.vector = vector
        self.fd = fd
        self.width = width
        self.ownsFile = ownsFile
        lastTotal = Atomic(total)
    }

    /// The fires a read of `width` bytes stands for: an eventfd's count, which the read reset,
    /// or how far UIO's running total moved since the last read.
    @inline(__always)
    func count(read counter: UnsafeRawBufferPointer) -> UInt64 {
        guard width == 4 else { return counter.load(as: UInt64.self) }
        let total = counter.load(as: UInt32.self)
        return UInt64(total &- lastTotal.exchange(total, ordering: .relaxed))
    }

    public var description: String { "\(index) vector \(vector)" }
}
