import PCI
import VFIOKit

/// The writes a bind will make, decided by ``BindPolicy`` before anything is written.
public struct BindPlan: Equatable, Sendable {
    public struct Step: Equatable, Sendable {
        public let address: PCIAddress
        /// The driver to unbind first, which the state file records as the original.
        public let currentDriver: DriverName?
        public let driver: DriverName
    }

    /// In address order.
    public var steps: [Step] = []
    /// Devices already bound to the requested driver; nothing is written for them.
    public var alreadyBound: [PCIAddress] = []
    public var warnings: [BindWarning] = []

    /// The changes the steps will make, for a dry run.
    public var intendedChanges: [SysfsBinder.Change] {
        steps.map { .init(address: $0.address, from: $0.currentDriver, to: $0.driver) }
    }
}

/// The writes an unbind will make, decided by ``UnbindPolicy``.
public struct UnbindPlan: Equatable, Sendable {
    /// What a device is given back to once its userspace driver lets go.
    public enum Restore: Equatable, Sendable {
        /// Leave it with no driver.
        case nothing
        /// Bind this driver through its `bind` file.
        case driver(DriverName)
        /// Let the kernel choose, through `drivers_probe`.
        case probe
    }

    public struct Step: Equatable, Sendable {
        public let address: PCIAddress
        public let currentDriver: DriverName?
        public let restore: Restore
    }

    public var steps: [Step] = []
    /// Devices already back on their recorded original driver; nothing is written for them.
    public var alreadyRestored: [PCIAddress] = []
    /// Devices whose records are dropped once the steps succeed: all of them on a restore.
    public var forget: [PCIAddress] = []
    public var warnings: [BindWarning] = []

    /// The changes the steps will make, for a dry run; `to` is nil where the kernel will choose.
    public var intendedChanges: [SysfsBinder.Change] {
        steps.map { step in
            let target: DriverName? = if case let .driver(name) = step.restore { name } else { nil }
            return .init(address: step.address, from: step.currentDriver, to: target)
        }
    }
}

/// Something the user should know about a bind or unbind that goes ahead anyway.
public enum BindWarning: Equatable, Sendable, CustomStringConvertible {
    /// RLIMIT_MEMLOCK is below what the driver is expected to pin.
    case memlockBelowPinSize(limit: UInt64, pinSize: UInt64)
    /// The device has no IOMMU: vfio-pci will drive it in no-IOMMU mode.
    case noIOMMU(PCIAddress)
    /// `--force` let a device the host is using be bound.
    case forcedWhileInUse(PCIAddress, DeviceUsage)
    /// `--whole-group` added a group member that held a host driver.
    case addedGroupMember(PCIAddress, group: Int, driver: DriverName)
    /// `--force` let a device on a host driver be unbound.
    case forcedUnbindOfHostDriver(PCIAddress, DriverName)
    /// No original driver was recorded; the kernel will pick one.
    case noRecordedDriver(PCIAddress)

    public var description: String {
        switch self {
        case let .memlockBelowPinSize(limit, pinSize):
            let kib = (pinSize + 1023) / 1024
            return """
                RLIMIT_MEMLOCK is \(formatByteSize(limit)) here, below the \(formatByteSize(pinSize)) a driver is expected \
                to pin for DMA (change the expectation with --pin-size); DMA mappings beyond the limit fail with ENOMEM. \
                Raise it for the process that runs the driver: `ulimit -l \(kib)` in its shell, a line \
                `@vfio - memlock \(kib)` in /etc/security/limits.conf, or LimitMEMLOCK=\(kib)K in its systemd unit \
                (processes with CAP_IPC_LOCK are exempt)
                """
        case let .noIOMMU(address):
            return """
                !!! \(address) HAS NO IOMMU: vfio-pci drives it in UNSAFE no-IOMMU mode. Its DMA is not isolated: \
                a driver bug or a malicious device can overwrite any memory of this host. The group appears as \
                /dev/vfio/noiommu-N, opening it needs CAP_SYS_RAWIO, and the kernel is tainted. Use this only on \
                hardware you trust, for testing
                """
        case let .forcedWhileInUse(address, usage):
            return "--force: binding \(address) although the host uses it (\(usage.summary)); those users lose it now"
        case let .addedGroupMember(address, group, driver):
            return "--whole-group: also binding \(address) (IOMMU group \(group)), taking it from \(driver)"
        case let .forcedUnbindOfHostDriver(address, driver):
            return "--force: unbinding \(address) from the host driver \(driver)"
        case let .noRecordedDriver(address):
            return "no original driver is recorded for \(address); asking the kernel to probe one (drivers_probe)"
        }
    }
}
