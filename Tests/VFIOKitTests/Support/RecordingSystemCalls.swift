import Synchronization
import SystemPackage
import VFIOKit

/// Passes every call to `base`, recording each close and epoll_ctl in order; `epollWaitError`
/// makes every epoll_wait fail as a broken epoll set would.
final class RecordingSystemCalls: SystemCalls {
    enum Call: Equatable {
        case close(Int32)
        case epollControl(operation: Int32, fd: Int32)
    }

    let base: any SystemCalls
    let epollWaitError: Errno?
    private let log = Mutex<[Call]>([])
    private let waits = Atomic<Int>(0)

    init(_ base: any SystemCalls, epollWaitError: Errno? = nil) {
        self.base = base
        self.epollWaitError = epollWaitError
    }

    var calls: [Call] { log.withLock { $0 } }
    /// How many times epoll_wait was called.
    var epollWaits: Int { waits.load(ordering: .acquiring) }

    func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor { try base.open(path, flags) }
    func close(_ fd: FileDescriptor) throws(Errno) {
        log.withLock { $0.append(.close(fd.rawValue)) }
        try base.close(fd)
    }
    func ioctl(_ fd: FileDescriptor, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 { try base.ioctl(fd, request, argument) }
    func mmap(length: Int, protection: Int32, flags: Int32, fd: FileDescriptor?, offset: Int64) throws(Errno) -> UnsafeMutableRawPointer {
        try base.mmap(length: length, protection: protection, flags: flags, fd: fd, offset: offset)
    }
    func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) { try base.munmap(address, length: length) }
    func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try base.pread(fd, into: buffer, at: offset)
    }
    func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try base.pwrite(fd, from: buffer, at: offset)
    }
    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int { try base.read(fd, into: buffer) }
    func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int { try base.write(fd, from: buffer) }
    func eventfd(initialValue: UInt32, flags: Int32) throws(Errno) -> FileDescriptor { try base.eventfd(initialValue: initialValue, flags: flags) }
    func epollCreate() throws(Errno) -> FileDescriptor { try base.epollCreate() }
    func epollControl(_ epoll: FileDescriptor, _ operation: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64) throws(Errno) {
        log.withLock { $0.append(.epollControl(operation: operation, fd: fd.rawValue)) }
        try base.epollControl(epoll, operation, fd, events: events, data: data)
    }
    func epollWait(
        _ epoll: FileDescriptor, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>,
        capacity: Int32, timeoutMilliseconds: Int32
    ) throws(Errno) -> Int {
        waits.add(1, ordering: .releasing)
        if let epollWaitError { throw epollWaitError }
        return try base.epollWait(epoll, events: events, data: data, capacity: capacity, timeoutMilliseconds: timeoutMilliseconds)
    }
    func readLink(_ path: String) throws(Errno) -> String { try base.readLink(path) }
    func listDirectory(_ path: String) throws(Errno) -> [String] { try base.listDirectory(path) }
}
