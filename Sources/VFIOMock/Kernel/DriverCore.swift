import SystemPackage

/// How the kernel's driver core answers the sysfs writes that bind and unbind PCI drivers
/// (drivers/base/bus.c and dd.c, drivers/pci/pci-driver.c), as rules any model of sysfs
/// applies to its own state: `MockKernel`'s functions, or the host tests' tree of files.
///
/// - `driver_override` restricts matching to the named driver and reads back `(null)` when
///   cleared (`pci_match_device`: an override that names the driver always matches).
/// - A driver's `unbind` needs the device bound to that driver: ENODEV otherwise.
/// - A driver's `bind` fails with EBUSY on a bound device, ENODEV when the driver does not
///   match, and the probe's error (EIO here) when the driver rejects the device.
/// - `drivers_probe` leaves a bound device alone and otherwise binds the first matching driver
///   whose probe succeeds, or nothing.
public enum DriverCore {
    /// What a device looks like to matching: its override, and whether a driver's ID table
    /// (static or dynamic IDs) lists it.
    public struct Device {
        /// The driver bound now, if any.
        public var bound: String?
        /// `driver_override`, nil when cleared.
        public var override: String?
        /// Whether `driver`'s ID table lists the device.
        public var listedBy: (_ driver: String) -> Bool

        /// A device as matching sees it.
        public init(bound: String?, override: String?, listedBy: @escaping (_ driver: String) -> Bool) {
            self.bound = bound
            self.override = override
            self.listedBy = listedBy
        }

        /// `pci_match_device`: an override decides alone; without one, the ID table does.
        public func matches(_ driver: String) -> Bool {
            if let override { return override == driver }
            return listedBy(driver)
        }
    }

    /// The override a write of `name` (newline removed) to `driver_override` leaves (nil:
    /// cleared, reads `(null)`).
    public static func override(written name: String) -> String? { name.isEmpty ? nil : name }

    /// What `driver_override` reads.
    public static func overrideText(_ override: String?) -> String { override ?? "(null)" }

    /// A write to `driver`'s `bind`: returns normally when the device should now be bound to it.
    public static func bind(_ driver: String, _ device: Device, probeFails: Bool = false) throws(Errno) {
        guard device.bound == nil else { throw .resourceBusy }
        guard device.matches(driver) else { throw .operationNotSupportedByDevice }
        if probeFails { throw .ioError }
    }

    /// A write to `driver`'s `unbind`: returns normally when the device should now be unbound.
    public static func unbind(_ driver: String, _ device: Device) throws(Errno) {
        guard device.bound == driver else { throw .operationNotSupportedByDevice }
    }

    /// A write to `drivers_probe`: the driver, of `drivers` in the order given, the device
    /// should now be bound to; nil when it stays as it is.
    public static func probe(_ device: Device, drivers: [String], probeFails: (String) -> Bool = { _ in false }) -> String? {
        guard device.bound == nil else { return nil }
        return drivers.first { device.matches($0) && !probeFails($0) }
    }
}
