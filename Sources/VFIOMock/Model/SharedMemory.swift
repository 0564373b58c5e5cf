#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage

/// Memory that two mappings see alike: a memfd, mapped once for the mock's own use. The
/// framework's mmap of the same BAR maps the same memfd, so both sides see the same bytes.
final class SharedMemory: @unchecked Sendable {
    let fd: Int32
    let size: Int
    /// The mock's own mapping, valid for the life of this object.
    let bytes: UnsafeMutableRawPointer

    init(name: String, size: Int) throws(Errno) {
        let fd = cvfio_memfd_create(name, 1 /* MFD_CLOEXEC */)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = Errno(rawValue: errno)
            Glibc.close(fd)
            throw e
        }
        guard let p = Glibc.mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            let e = Errno(rawValue: errno)
            Glibc.close(fd)
            throw e
        }
        self.fd = fd
        self.size = size
        self.bytes = p
    }

    deinit {
        Glibc.munmap(bytes, size)
        Glibc.close(fd)
    }
}
