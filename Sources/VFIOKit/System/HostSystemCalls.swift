#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage

/// The real kernel: each call is the system call of the same name, retried on `EINTR`.
public final class HostSystemCalls: SystemCalls {
    /// The process-wide instance; it holds no state.
    public static let shared = HostSystemCalls()

    /// Another handle on the real kernel; ``shared`` serves as well, since there is no state.
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

    /// open(2) with `O_CLOEXEC` added, retried on `EINTR`.
    public func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try retrying { Glibc.open(path, flags | O_CLOEXEC) })
    }

    /// close(2), never retried: Linux releases the descriptor even when it reports `EINTR`, which
    /// is therefore not reported either.
    public func close(_ fd: FileDescriptor) throws(Errno) {
        // Linux releases the descriptor even when close reports EINTR, so never retry.
        if Glibc.close(fd.rawValue) < 0 && errno != EINTR { throw Errno(rawValue: errno) }
    }

    /// ioctl(2) through CVFIO's untyped shim, retried on `EINTR`.
    public func ioctl(_ fd: FileDescriptor, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 {
        try retrying { cvfio_ioctl(fd.rawValue, request, argument) }
    }

    /// mmap(2) with no address hint (`fd` nil maps anonymous memory); throws errno when it fails.
    public func mmap(length: Int, protection: Int32, flags: Int32, fd: FileDescriptor?, offset: Int64)
        throws(Errno) -> UnsafeMutableRawPointer
    {
        guard let p = Glibc.mmap(nil, length, protection, flags, fd?.rawValue ?? -1, off_t(offset)),
            p != MAP_FAILED
        else { throw Errno(rawValue: errno) }
        return p
    }

    /// munmap(2).
    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {
        if Glibc.munmap(address, length) < 0 { throw Errno(rawValue: errno) }
    }

    /// mmap(2) with `MAP_FIXED` of private anonymous memory, read-write, over the range, then a
    /// fill with 0xff bytes; see ``SystemCalls/retireMapping(_:length:)``.
    public func retireMapping(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
        guard let p = Glibc.mmap(address, length, PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else {
            throw Errno(rawValue: errno)
        }
        p.initializeMemory(as: UInt8.self, repeating: 0xff, count: length)
    }

    /// pread(2), retried on `EINTR`; returns the bytes read, which may be short (0 at end of file).
    public func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try retrying { Glibc.pread(fd.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// pwrite(2), retried on `EINTR`; returns the bytes written, which may be short.
    public func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try retrying { Glibc.pwrite(fd.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// read(2), retried on `EINTR`; returns the bytes read (0 at end of file).
    public func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retrying { Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    /// write(2), retried on `EINTR`; returns the bytes written, which may be short.
    public func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try retrying { Glibc.write(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    /// eventfd(2) with `EFD_CLOEXEC` added, retried on `EINTR`.
    public func eventfd(initialValue: UInt32, flags: Int32) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try retrying { cvfio_eventfd(initialValue, flags | Int32(EFD_CLOEXEC)) })
    }

    /// memfd_create(2) with `MFD_CLOEXEC` added, then ftruncate(2) to `size`, each retried on
    /// `EINTR`; the file is closed when the ftruncate fails.
    public func memoryFile(name: String, size: Int, flags: UInt32) throws(Errno) -> FileDescriptor {
        let file = OwnedFileDescriptor(
            FileDescriptor(rawValue: try retrying { cvfio_memfd_create(name, flags | CVFIO_MFD_CLOEXEC) }),
            name: "memfd \(name)", system: self)
        _ = try retrying { ftruncate(file.rawValue.rawValue, off_t(size)) }
        return file.release()
    }

    /// A non-blocking, close-on-exec CLOCK_MONOTONIC timerfd armed to expire every `interval`
    /// (whole nanoseconds), first one interval from now. The caller owns the descriptor; if arming
    /// fails, the timer is closed and the error thrown.
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

    /// epoll_create1(EPOLL_CLOEXEC), retried on `EINTR`.
    public func epollCreate() throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try retrying { epoll_create1(Int32(EPOLL_CLOEXEC)) })
    }

    /// epoll_ctl(2) with `data` as the event's 64-bit payload, retried on `EINTR`.
    public func epollControl(_ epoll: FileDescriptor, _ operation: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64)
        throws(Errno)
    {
        _ = try retrying { cvfio_epoll_ctl(epoll.rawValue, operation, fd.rawValue, events, data) }
    }

    /// epoll_wait(2) into the two parallel arrays, retried on `EINTR` (so a signal restarts the
    /// whole timeout); returns the events filled, 0 on timeout.
    public func epollWait(
        _ epoll: FileDescriptor, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>,
        capacity: Int32, timeoutMilliseconds: Int32
    ) throws(Errno) -> Int {
        Int(try retrying { cvfio_epoll_wait(epoll.rawValue, events, data, capacity, timeoutMilliseconds) })
    }

    /// readlink(2), retried on `EINTR`; a target longer than 4095 bytes comes back cut short.
    public func readLink(_ path: String) throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = try retrying { Glibc.readlink(path, &buffer, buffer.count - 1) }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The names opendir(3)/readdir(3) list, without `.` and `..`, in directory order; throws only
    /// when the directory cannot be opened.
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
