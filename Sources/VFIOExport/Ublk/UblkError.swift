#if canImport(Glibc)
import Glibc
#endif

/// Why the ublk export could not set up, run or tear down a device; each names what failed
/// and what to do.
public enum UblkError: Error, Equatable, CustomStringConvertible {
    /// `/dev/ublk-control` does not exist: the kernel's ublk driver is not loaded.
    case controlDeviceMissing(path: String)
    /// A system call on the way failed.
    case system(operation: String, errno: Int32)
    /// The kernel refused a ublk command.
    case command(name: String, deviceID: UInt32?, errno: Int32)
    /// The block device cannot be described to ublk (a block size outside 512…4096 bytes, …).
    case geometry(String)
    /// The kernel's ublk driver lacks something this server needs.
    case unsupported(String)

    public var description: String {
        switch self {
        case .controlDeviceMissing(let path):
            return
                "\(path) does not exist: the kernel's ublk driver is not loaded; run `modprobe ublk_drv` (Linux 6.0 or later, built with CONFIG_BLK_DEV_UBLK)"
        case .system(let operation, let errno):
            let hint = errno == EACCES || errno == EPERM ? " (ublk devices need CAP_SYS_ADMIN: run as root)" : ""
            return "\(operation) failed: \(Self.name(errno))\(hint)"
        case .command(let name, let id, let errno):
            let device = id.map { " for ublk device \($0)" } ?? ""
            return "the kernel refused ublk \(name)\(device): \(Self.name(errno))"
        case .geometry(let why):
            return "the block device cannot be exported over ublk: \(why)"
        case .unsupported(let why):
            return "the kernel's ublk driver cannot serve this export: \(why)"
        }
    }

    /// `strerror`, with the symbolic name's number.
    static func name(_ errno: Int32) -> String {
        "\(String(cString: strerror(errno))) (errno \(errno))"
    }
}
