#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage

/// The real kernel: each call is the system call of the same name, retried on `EINTR`.
public final class HostSystemCalls: SystemCalls {
    /// The process-wide instance; it holds no state.
    public static let shared = HostSystemCalls()

    public init() {}

    @inline(__always)
    private func retrying<T: BinaryInteger>(_ body: () -> T) throws(Errno) -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = Errno(rawValue: errno)
            if e != .interrupted { throw e }
        }
    }

    public func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try retrying { Glibc.open(path, flags | O_CLOEXEC) })
    }

    public func close(_ fd: FileDescriptor) throws(Errno) {
        // Linux releases the descriptor even when close reports EINTR, so never retry.
        if Glibc.close(fd.rawValue) < 0 && errno != EINTR { throw Errno(rawValue: errno) }
    }

    public func ioctl(_ fd: FileDescriptor, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 {
        try retrying { cvfio_ioctl(fd.rawValue, request, argument) }
    }

    public func mmap(length: Int, protection: Int32, flags: Int32, fd: FileDescriptor?, offset: Int64)
        throws(Errno) -> UnsafeMutableRawPointer
    {
        guard let p = Glibc.mmap(nil, length, protection, flags, fd?.rawValue ?? -1, off_t(offset)),
            p != MAP_FAILED
        else { throw Errno(rawValue: errno) }
        return p
    }

    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {
        if Glibc.munmap(address, length) < 0 { throw Errno(rawValue: errno) }
    }

    public func retireMapping(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
        guard let p = Glibc.mmap(address, length, PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else {
            throw Errno(rawValue: errno)
        }
        p.initializeMemory(as: UInt8.self, repeating: 0xff, count: length)
    }

    public func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try retrying { Glibc.pread(fd.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    public func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try retrying { Glibc.pwrite(fd.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    public func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retrying { Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    public func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try retrying { Glibc.write(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    public func eventfd(initialValue: UInt32, flags: Int32) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try retrying { cvfio_eventfd(initialValue, flags | Int32(EFD_CLOEXEC)) })
    }

    public func periodicTimer(interval: Duration) throws(Errno) -> FileDescriptor {
        let timer = OwnedFileDescriptor(
            FileDescriptor(rawValue: try retrying { timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC)) }),
            name: "timerfd", system: self)
        let ns = Int(interval / .nanoseconds(1))
        let period = timespec(tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000)
        var spec = itimerspec(it_interval: period, it_value: period)
        _ = try retrying { timerfd_settime(timer.rawValue.rawValue, 0, &spec, nil) }
        return timer.release()
    }

    public func epollCreate() throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try retrying { epoll_create1(Int32(EPOLL_CLOEXEC)) })
    }

    public func epollControl(_ epoll: FileDescriptor, _ operation: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64)
        throws(Errno)
    {
        _ = try retrying { cvfio_epoll_ctl(epoll.rawValue, operation, fd.rawValue, events, data) }
    }

    public func epollWait(
        _ epoll: FileDescriptor, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>,
        capacity: Int32, timeoutMilliseconds: Int32
    ) throws(Errno) -> Int {
        Int(try retrying { cvfio_epoll_wait(epoll.rawValue, events, data, capacity, timeoutMilliseconds) })
    }

    public func readLink(_ path: String) throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = try retrying { Glibc.readlink(path, &buffer, buffer.count - 1) }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func listDirectory(_ path: String) throws(Errno) -> [String] {
        guard let dir = opendir(path) else { throw Errno(rawValue: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
