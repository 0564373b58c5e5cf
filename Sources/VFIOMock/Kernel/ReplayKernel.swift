import SystemPackage
import VFIOKit

/// A kernel that answers every ioctl with the next bytes of a script, as many as the caller's
/// argsz, written over the whole argument (argsz, flags, offsets and capability chains
/// included): a buggy kernel, for fuzzing and regression tests of the info parsers. Other
/// calls fail or do nothing. Not thread-safe.
public final class ReplayKernel: SystemCalls, @unchecked Sendable {
    private var input: ArraySlice<UInt8>

    /// A kernel whose ioctls replay `input`, from its first byte.
    public init(_ input: [UInt8]) { self.input = input[...] }

    /// Copies the next `min(argsz, remaining)` script bytes over the argument, whose first 4 bytes
    /// are read as its argsz, and succeeds; `EFAULT` for a null argument, `EINVAL` once the script
    /// is used up.
    public func ioctl(_ fd: FileDescriptor, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 {
        guard let p = UnsafeMutableRawPointer(bitPattern: argument) else { throw .badAddress }
        guard !input.isEmpty else { throw .invalidArgument }
        let argsz = Int(p.loadUnaligned(as: UInt32.self))
        let n = min(argsz, input.count)
        input.prefix(n).withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: n) }
        input = input.dropFirst(n)
        return 0
    }

    /// Always `ENOENT`: the replay has no files.
    public func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor { throw .noSuchFileOrDirectory }
    /// Does nothing, successfully.
    public func close(_ fd: FileDescriptor) throws(Errno) {}
    /// Always `ENOMEM`: the replay maps nothing.
    public func mmap(length: Int, protection: Int32, flags: Int32, fd: FileDescriptor?, offset: Int64) throws(Errno) -> UnsafeMutableRawPointer {
        throw .noMemory
    }
    /// Does nothing, successfully.
    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {}
    /// Always `EINVAL`: the replay mapped nothing to retire.
    public func retireMapping(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) { throw .invalidArgument }
    /// Always `EIO`.
    public func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int { throw .ioError }
    /// Always `EIO`.
    public func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int { throw .ioError }
    /// Always `EIO`.
    public func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int { throw .ioError }
    /// Always `EIO`.
    public func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int { throw .ioError }
    /// Always `ENOMEM`.
    public func eventfd(initialValue: UInt32, flags: Int32) throws(Errno) -> FileDescriptor { throw .noMemory }
    /// Always `ENOMEM`.
    public func memoryFile(name: String, size: Int, flags: UInt32) throws(Errno) -> FileDescriptor { throw .noMemory }
    /// Always `ENOMEM`.
    public func periodicTimer(interval: Duration) throws(Errno) -> FileDescriptor { throw .noMemory }
    /// Always `ENOMEM`.
    public func epollCreate() throws(Errno) -> FileDescriptor { throw .noMemory }
    /// Does nothing, successfully.
    public func epollControl(_ epoll: FileDescriptor, _ operation: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64) throws(Errno) {}
    /// Returns 0 at once, as an immediate timeout.
    public func epollWait(_ epoll: FileDescriptor, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>,
                   capacity: Int32, timeoutMilliseconds: Int32) throws(Errno) -> Int { 0 }
    /// Always `ENOENT`.
    public func readLink(_ path: String) throws(Errno) -> String { throw .noSuchFileOrDirectory }
    /// Always `ENOENT`.
    public func listDirectory(_ path: String) throws(Errno) -> [String] { throw .noSuchFileOrDirectory }
}
