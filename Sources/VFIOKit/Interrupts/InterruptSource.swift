import SystemPackage

/// One interrupt vector as a file the event loop waits on: an eventfd the kernel signals
/// (VFIO), or UIO's `/dev/uioN`. Reading it returns how many times it fired since the last read.
public final class InterruptSource: Sendable, CustomStringConvertible {
    public let index: IRQIndex
    public let vector: Int
    public let fd: FileDescriptor
    /// Bytes a read returns: 8 for an eventfd, 4 for UIO's counter.
    let width: Int
    /// False when the file belongs to the backend (UIO) rather than to this source.
    let ownsFile: Bool

    init(index: IRQIndex, vector: Int, fd: FileDescriptor, width: Int, ownsFile: Bool) {
        self.index = index
        self.vector = vector
        self.fd = fd
        self.width = width
        self.ownsFile = ownsFile
    }

    public var description: String { "\(index) vector \(vector)" }
}
