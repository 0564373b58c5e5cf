import CVFIO
#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// The one seam between VFIOKit and the kernel.
///
/// Every open, close, ioctl, mmap, munmap, pread, pwrite, read, write, eventfd, memfd, timerfd,
/// epoll, readlink and directory listing the framework makes goes through a value of this type.
/// ``HostSystemCalls`` makes the real calls; `VFIOMock.MockKernel` serves the same calls from
/// a model of the kernel. Nothing above the seam knows which one it holds.
///
/// Each call has the meaning of its namesake in Linux, reports failure as the kernel's
/// `Errno`, and retries by itself on `EINTR`. File descriptors are opened close-on-exec.
public protocol SystemCalls: AnyObject, Sendable {
    /// open(2) with `O_CLOEXEC` added.
    func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor
    /// close(2). The descriptor is gone afterwards even when an error is reported.
    func close(_ fd: FileDescriptor) throws(Errno)
    /// ioctl(2). `argument` is a pointer's bit pattern or an integer, as the request defines.
    func ioctl(_ fd: FileDescriptor, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32
    /// mmap(2) with no address hint. `fd` is nil for anonymous memory.
    func mmap(length: Int, protection: Int32, flags: Int32, fd: FileDescriptor?, offset: Int64)
        throws(Errno) -> UnsafeMutableRawPointer
    /// munmap(2).
    func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno)
    /// Replaces a mapping, in place, with private anonymous memory filled with all ones,
    /// read-write (mmap(2) with `MAP_FIXED`, then a fill), so stale pointers into it stay
    /// harmless until munmap: a read returns all ones until something writes there, and a
    /// write lands in the private memory, reaching no device.
    func retireMapping(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno)
    /// pread(2): returns the number of bytes read, which may be short.
    func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int
    /// pwrite(2): returns the number of bytes written, which may be short.
    func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int
    /// read(2).
    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int
    /// write(2).
    func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int
    /// eventfd(2) with `EFD_CLOEXEC` added.
    func eventfd(initialValue: UInt32, flags: Int32) throws(Errno) -> FileDescriptor
    /// memfd_create(2) with `MFD_CLOEXEC` added, then ftruncate(2) to `size` bytes: memory
    /// that can be mapped `MAP_SHARED` and handed to another process by its descriptor.
    /// `flags` may add `MFD_HUGETLB` (then `size` must be a multiple of the huge page size).
    /// The caller owns the descriptor; when the ftruncate fails, the file is closed first.
    func memoryFile(name: String, size: Int, flags: UInt32) throws(Errno) -> FileDescriptor
    /// timerfd_create(2) on CLOCK_MONOTONIC with `TFD_NONBLOCK | TFD_CLOEXEC`, armed by
    /// timerfd_settime(2) to expire every `interval`, first one interval from now. A read(2) of
    /// 8 bytes returns the expirations since the last read.
    func periodicTimer(interval: Duration) throws(Errno) -> FileDescriptor
    /// epoll_create1(EPOLL_CLOEXEC).
    func epollCreate() throws(Errno) -> FileDescriptor
    /// epoll_ctl(2): `operation` is EPOLL_CTL_ADD, _MOD or _DEL; `data` comes back from epollWait.
    func epollControl(_ epoll: FileDescriptor, _ operation: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64)
        throws(Errno)
    /// epoll_wait(2) into two parallel arrays of `capacity` (at most 64) entries.
    /// Returns 0 on timeout; a negative timeout waits forever.
    func epollWait(
        _ epoll: FileDescriptor, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>,
        capacity: Int32, timeoutMilliseconds: Int32
    ) throws(Errno) -> Int
    /// readlink(2).
    func readLink(_ path: String) throws(Errno) -> String
    /// The names in a directory, without `.` and `..`, in no particular order.
    func listDirectory(_ path: String) throws(Errno) -> [String]
}

extension SystemCalls {
    /// Reads a whole small file (a sysfs attribute) as text, trailing newline removed.
    public func readText(_ path: String) throws(Errno) -> String {
        let fd = try open(path, O_RDONLY)
        // Cannot fail in a way that matters: a read-only attribute has nothing to flush.
        defer { try? close(fd) }
        var bytes: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { chunk.deallocate() }
        while true {
            let n = try read(fd, into: chunk)
            if n == 0 { break }
            bytes += chunk[..<n]
        }
        var text = String(decoding: bytes, as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        return text
    }

    /// Writes a whole value to a file (a sysfs attribute) in one write(2).
    public func writeText(_ path: String, _ text: String) throws(Errno) {
        let fd = try open(path, O_WRONLY)
        // Cannot fail in a way that matters: sysfs acts on the write itself and reports its
        // error there (below); its close has nothing to flush.
        defer { try? close(fd) }
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        let n = try write(fd, from: UnsafeRawBufferPointer(rebasing: buffer[..<bytes.count]))
        guard n == bytes.count else { throw Errno.ioError }
    }
}
