import Glibc
import Synchronization
import SystemPackage
import VFIOKit
import VFIOMock

/// Passes every call to a mock kernel, showing it to a hook first, which may refuse it: for
/// tests of the order of calls, of the framework's fallbacks, and of injected faults. A
/// refused close still closes (Linux releases the descriptor whatever close reports).
final class InterposedKernel: SystemCalls, @unchecked Sendable {
    enum Call: Equatable {
        case ioctl(request: UInt)
        /// `file` is nil for anonymous memory.
        case mmap(file: FileDescriptor?)
        case close(FileDescriptor)
        /// `operation` is EPOLL_CTL_ADD (1), _DEL (2) or _MOD (3); `file` the fd added or removed.
        case epollControl(operation: Int32, file: FileDescriptor)
        case epollWait
        case open(path: String)
        case munmap, retireMapping
        case pread, pwrite, read, write
        case eventfd, memoryFile, periodicTimer, epollCreate
        case readLink, listDirectory
    }
    let kernel: MockKernel
    private let hook: (Call) throws(Errno) -> Void
    private let nextEventfdNumber = Mutex<FileDescriptor?>(nil)

    init(_ kernel: MockKernel, hook: @escaping (Call) throws(Errno) -> Void) {
        self.kernel = kernel
        self.hook = hook
    }

    /// Moves the next eventfd to `number` (with dup2), which the test holds or which is free:
    /// so a test can reuse a closed number without racing parallel tests for it.
    func placeNextEventfd(at number: FileDescriptor) {
        nextEventfdNumber.withLock { $0 = number }
    }

    func ioctl(_ fd: FileDescriptor, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 {
        try hook(.ioctl(request: request))
        return try kernel.ioctl(fd, request, argument)
    }
    func mmap(length: Int, protection: Int32, flags: Int32, fd: FileDescriptor?, offset: Int64) throws(Errno) -> UnsafeMutableRawPointer {
        try hook(.mmap(file: fd))
        return try kernel.mmap(length: length, protection: protection, flags: flags, fd: fd, offset: offset)
    }
    func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor {
        try hook(.open(path: path))
        return try kernel.open(path, flags)
    }
    func close(_ fd: FileDescriptor) throws(Errno) {
        do { try hook(.close(fd)) } catch {
            try? kernel.close(fd)
            throw error
        }
        try kernel.close(fd)
    }
    func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {
        try hook(.munmap)
        try kernel.munmap(address, length: length)
    }
    func retireMapping(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {
        try hook(.retireMapping)
        try kernel.retireMapping(address, length: length)
    }
    func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try hook(.pread)
        return try kernel.pread(fd, into: buffer, at: offset)
    }
    func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try hook(.pwrite)
        return try kernel.pwrite(fd, from: buffer, at: offset)
    }
    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try hook(.read)
        return try kernel.read(fd, into: buffer)
    }
    func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try hook(.write)
        return try kernel.write(fd, from: buffer)
    }
    func eventfd(initialValue: UInt32, flags: Int32) throws(Errno) -> FileDescriptor {
        try hook(.eventfd)
        let fd = try kernel.eventfd(initialValue: initialValue, flags: flags)
        guard let target = nextEventfdNumber.withLock({ $0.take() }) else { return fd }
        defer { try? kernel.close(fd) }
        guard dup2(fd.rawValue, target.rawValue) == target.rawValue else { throw Errno(rawValue: errno) }
        _ = fcntl(target.rawValue, F_SETFD, FD_CLOEXEC)
        return target
    }
    func memoryFile(name: String, size: Int, flags: UInt32) throws(Errno) -> FileDescriptor {
        try hook(.memoryFile)
        return try kernel.memoryFile(name: name, size: size, flags: flags)
    }
    func periodicTimer(interval: Duration) throws(Errno) -> FileDescriptor {
        try hook(.periodicTimer)
        return try kernel.periodicTimer(interval: interval)
    }
    func epollCreate() throws(Errno) -> FileDescriptor {
        try hook(.epollCreate)
        return try kernel.epollCreate()
    }
    func epollControl(_ epoll: FileDescriptor, _ operation: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64) throws(Errno) {
        try hook(.epollControl(operation: operation, file: fd))
        try kernel.epollControl(epoll, operation, fd, events: events, data: data)
    }
    func epollWait(
        _ epoll: FileDescriptor, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>, capacity: Int32,
        timeoutMilliseconds: Int32
    ) throws(Errno) -> Int {
        try hook(.epollWait)
        return try kernel.epollWait(epoll, events: events, data: data, capacity: capacity, timeoutMilliseconds: timeoutMilliseconds)
    }
    func readLink(_ path: String) throws(Errno) -> String {
        try hook(.readLink)
        return try kernel.readLink(path)
    }
    func listDirectory(_ path: String) throws(Errno) -> [String] {
        try hook(.listDirectory)
        return try kernel.listDirectory(path)
    }
}
