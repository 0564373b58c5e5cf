import CUdev
#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Reports PCI devices being added, removed, bound and unbound, through a libudev monitor
/// filtered to subsystem `pci`.
///
/// The monitor's ``fileDescriptor`` is non-blocking: add it to an epoll set or poll it, and
/// when it is readable call ``nextEvent()`` until it returns nil. Events are not lost while
/// nobody reads, up to the socket's buffer. Use from one thread at a time.
public final class PCIDeviceMonitor {
    /// Where events come from.
    public enum Source: String, Sendable {
        /// After udevd has run its rules (the device node has its final permissions, a rule
        /// has set `driver_override`). Needs a running udevd.
        case udev
        /// Straight from the kernel, before udevd; works without udevd.
        case kernel
    }

    private let udev: OpaquePointer
    private let monitor: OpaquePointer
    /// Readable when events are waiting. Owned by the monitor: do not close it.
    public let fileDescriptor: FileDescriptor

    public init(source: Source = .udev) throws(HostAccessError) {
        guard let udev = udev_new() else { throw .udev(call: "udev_new", Errno(rawValue: errno)) }
        guard let monitor = udev_monitor_new_from_netlink(udev, source.rawValue) else {
            let failure = Errno(rawValue: errno)
            udev_unref(udev)
            throw .udev(call: "udev_monitor_new_from_netlink(\"\(source.rawValue)\")", failure)
        }
        self.udev = udev
        self.monitor = monitor
        var status = udev_monitor_filter_add_match_subsystem_devtype(monitor, "pci", nil)
        if status >= 0 { status = udev_monitor_enable_receiving(monitor) }
        let fd = udev_monitor_get_fd(monitor)
        fileDescriptor = FileDescriptor(rawValue: fd)
        guard status >= 0, fd >= 0 else {
            udev_monitor_unref(monitor)
            udev_unref(udev)
            throw .udev(call: "udev_monitor_enable_receiving", Errno(rawValue: status < 0 ? -status : -fd))
        }
    }

    deinit {
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }

    /// The next pending event, or nil when none is waiting. Never blocks; uevents that are not
    /// about a PCI function's add, remove, bind, unbind or change are skipped.
    public func nextEvent() -> PCIDeviceEvent? {
        while let device = udev_monitor_receive_device(monitor) {
            defer { udev_device_unref(device) }
            guard let action = udev_device_get_action(device), let sysname = udev_device_get_sysname(device) else {
                continue
            }
            let driver = udev_device_get_driver(device).map { String(cString: $0) }
            if let event = PCIDeviceEvent(action: String(cString: action), sysname: String(cString: sysname), driver: driver) {
                return event
            }
        }
        return nil
    }
}
