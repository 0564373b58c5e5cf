import PCI
import VFIOKit

/// A change to a PCI device that the udev monitor reported.
public enum PCIDeviceEvent: Equatable, Sendable {
    /// The device appeared (hot-plug, rescan, a VF created); `driver` is set if one was
    /// already bound when the event was sent.
    case added(PCIAddress, driver: DriverName?)
    /// The device went away.
    case removed(PCIAddress)
    /// A driver was bound to the device.
    case bound(PCIAddress, driver: DriverName)
    /// The device's driver was unbound; the kernel no longer names it.
    case unbound(PCIAddress)
    /// Something else about the device changed (or a `change` uevent was synthesised).
    case changed(PCIAddress, driver: DriverName?)

    /// Builds an event from a uevent's ACTION, the device's sysfs name and its DRIVER property.
    ///
    /// Returns nil for events that say nothing about a PCI function the host side tracks: an
    /// unknown action (`move`, `online`, …), a name that is not a PCI address, or a bind
    /// without a well-formed driver name.
    public init?(action: String, sysname: String, driver: String?) {
        guard let address = try? PCIAddress(parsing: sysname) else { return nil }
        let driverName = driver.flatMap { try? DriverName($0) }
        switch action {
        case "add": self = .added(address, driver: driverName)
        case "remove": self = .removed(address)
        case "bind":
            guard let driverName else { return nil }
            self = .bound(address, driver: driverName)
        case "unbind": self = .unbound(address)
        case "change": self = .changed(address, driver: driverName)
        default: return nil
        }
    }

    /// The device the event is about.
    public var address: PCIAddress {
        switch self {
        case let .added(a, _), let .removed(a), let .bound(a, _), let .unbound(a), let .changed(a, _): a
        }
    }
}
