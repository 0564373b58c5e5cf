import PCI

/// What `vfiokit run` runs under ``DaemonService``: ``DriverHost`` with every driver in the daemon's
/// own process, or ``WorkerSupervisor`` with each IOMMU context's drivers in a worker process.
public protocol DaemonHost: AnyObject, Sendable {
    var configuration: DaemonConfiguration { get }
    /// True when the devices are the mock kernel's simulated ones.
    var simulated: Bool { get }
    /// Takes the lock, finishes a killed daemon's restore, binds if asked and starts the
    /// drivers; throws when another daemon runs or no device could be started.
    func start() throws(DaemonError)
    /// Every hosted device as it stands.
    func status() -> StatusReport
    /// Attaches a configured device that udev reported added.
    func deviceAdded(_ address: PCIAddress)
    /// Stops the device's driver and releases it, the others untouched.
    func removeDevice(_ address: PCIAddress, reason: String)
    /// Stops the drivers, then masks and disables interrupts, unmaps DMA, resets and closes
    /// the devices, and gives back the bindings this daemon made. Safe to call twice.
    func shutdown()
}
