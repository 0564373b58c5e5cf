#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

extension Errno {
    /// The errno's symbolic name (`EINVAL`), so that records read like the kernel sources;
    /// one outside the table prints as `errno N`.
    var symbol: String {
        switch rawValue {
        case Glibc.EPERM: "EPERM"
        case Glibc.ENOENT: "ENOENT"
        case Glibc.EINTR: "EINTR"
        case Glibc.EIO: "EIO"
        case Glibc.ENXIO: "ENXIO"
        case Glibc.E2BIG: "E2BIG"
        case Glibc.EBADF: "EBADF"
        case Glibc.EAGAIN: "EAGAIN"
        case Glibc.ENOMEM: "ENOMEM"
        case Glibc.EACCES: "EACCES"
        case Glibc.EFAULT: "EFAULT"
        case Glibc.EBUSY: "EBUSY"
        case Glibc.EEXIST: "EEXIST"
        case Glibc.ENODEV: "ENODEV"
        case Glibc.EINVAL: "EINVAL"
        case Glibc.ENOTTY: "ENOTTY"
        case Glibc.ENOSPC: "ENOSPC"
        case Glibc.ERANGE: "ERANGE"
        case Glibc.EOVERFLOW: "EOVERFLOW"
        case Glibc.EBADFD: "EBADFD"
        case Glibc.EMSGSIZE: "EMSGSIZE"
        case Glibc.EOPNOTSUPP: "EOPNOTSUPP"
        case Glibc.EADDRINUSE: "EADDRINUSE"
        case Glibc.ENOSYS: "ENOSYS"
        default: "errno \(rawValue)"
        }
    }
}
