import PCI
import SystemPackage

/// A failure to read or write the host's kernel files or to talk to libudev.
public enum HostAccessError: Error, Equatable, CustomStringConvertible {
    /// The host has no PCI device at this address.
    case noSuchDevice(PCIAddress)
    /// A file the kernel provides could not be read.
    case unreadable(path: String, Errno)
    /// An attribute could not be written.
    case unwritable(path: String, value: String, Errno)
    /// An attribute held text the kernel never writes there.
    case malformed(path: String, value: String, expected: String)
    /// A libudev call failed.
    case udev(call: String, Errno)

    public var description: String {
        switch self {
        case let .noSuchDevice(address):
            "no PCI device \(address) on this host; run `vfiokit list` to see the addresses there"
        case let .unreadable(path, errno):
            "cannot read \(path): \(errno)\(Self.advice(for: errno))"
        case let .unwritable(path, value, errno):
            "cannot write \"\(value.trimmingNewlines)\" to \(path): \(errno)\(Self.advice(for: errno))"
        case let .malformed(path, value, expected):
            "unexpected content \"\(value)\" in \(path): expected \(expected); is this really sysfs?"
        case let .udev(call, errno):
            "libudev \(call) failed: \(errno); check that /sys is mounted and libudev can read it"
        }
    }

    private static func advice(for errno: Errno) -> String {
        switch errno {
        case .permissionDenied, .notPermitted: "; run as root (or with sudo)"
        case .noSuchFileOrDirectory: "; the device or driver may have gone away, run `vfiokit list` to see what is there"
        case .resourceBusy: "; the device is in use by its driver"
        case .noSuchAddressOrDevice, .operationNotSupportedByDevice: "; the kernel refused: the driver does not accept this device"
        default: ""
        }
    }
}

extension String {
    var trimmingNewlines: String {
        var s = self
        while s.last == "\n" { s.removeLast() }
        return s
    }
}
