#if canImport(Glibc)
import Glibc
#endif

/// Adds 1 to an eventfd's counter, as the kernel's `eventfd_signal` does.
func signalEventFD(_ fd: Int32) {
    var one: UInt64 = 1
    _ = Glibc.write(fd, &one, 8)
}

/// Takes a reference on an eventfd the caller passed in, as `eventfd_ctx_fdget` does: the
/// mock keeps its own duplicate, so the caller may close its descriptor. Fails with `EBADF`
/// for a closed descriptor and `EINVAL` for one that is not an eventfd.
func eventFDReference(_ fd: Int32) throws(Errno) -> Int32 {
    guard fd >= 0, fcntl(fd, F_GETFD) >= 0 else { throw .badFileDescriptor }
    var target = [CChar](repeating: 0, count: 256)
    let n = readlink("/proc/self/fd/\(fd)", &target, 255)
    guard n > 0, String(decoding: target[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "anon_inode:[eventfd]"
    else { throw .invalidArgument }
    let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
    guard copy >= 0 else { throw Errno(rawValue: errno) }
    return copy
}

import SystemPackage
