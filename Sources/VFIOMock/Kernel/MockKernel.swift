#if canImport(Glibc)
import Glibc
#endif
import PCI
import SystemPackage
import VFIOKit

/// A model of Linux's VFIO, iommufd and UIO, served at VFIOKit's ``SystemCalls`` seam.
///
/// Paths under `/dev/vfio`, `/dev/iommu`, `/dev/uioN`, `/sys` and `/proc/self/pagemap` are
/// the mock's; every other path is `ENOENT`, so tests never touch the host. Descriptors the
/// mock hands out are real, unique descriptors (placeholders the mock owns), so they never
/// collide with the real eventfds and epoll instances, which go straight to the host.
/// Anonymous memory mapped through the seam is registered as process memory (see
/// ``ProcessMemory``) so that DMA can be pinned and `pagemap` can report it.
///
/// Thread safety: every call may come from any thread; kernel state sits behind one lock,
/// and device models are called without it.
public final class MockKernel: SystemCalls, @unchecked Sendable {
    /// The kernel and machine the mock plays, fixed when it is made.
    public let configuration: Configuration
    let lock = KernelLock()

    // State below is guarded by `lock`.
    var functions: [PCIAddress: PCIFunction] = [:]
    var drivers: [PCIAddress: DriverBinding] = [:]
    var groups: [Int: MockGroup] = [:]
    var groupOfFunction: [PCIAddress: MockGroup] = [:]
    var vfioDevices: [PCIAddress: VFIOPCIDevice] = [:]
    var uioDevices: [PCIAddress: UIODevice] = [:]
    var files: [Int32: OpenFile] = [:]
    var memory = ProcessMemory()
    /// The memfds ``memoryFile(name:size:flags:)`` made and nobody closed, with their page size:
    /// a shared mapping of one is process memory, as anonymous memory is.
    var memoryFiles: [Int32: UInt64] = [:]
    /// Register BARs mapped through the seam, by address, until `munmap`.
    var trappedMappings: [UInt: TrappedMapping] = [:]
    /// Loads and stores served through them.
    var trappedMappingAccesses = 0
    var faults: [DMAFault] = []
    var kernelLog = KernelLog()
    var overrides: [PCIAddress: String] = [:]
    /// Config writes that reached a device through sysfs, to report once the lock is dropped.
    var pendingConfigNotifications: [(SimulatedDevice, Int, Int, UInt32)] = []
    private var nextBARAddress32: UInt64
    private var nextBARAddress64: UInt64 = 0x80_0000_0000
    var nextVFIOIndex = 0
    var nextUIOIndex = 0

    /// An empty machine (no functions plugged) playing `configuration`.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        nextBARAddress32 = configuration.firmwareBARBase32
    }

    deinit {
        for file in files.values { Glibc.close(file.placeholder) }
        for d in vfioDevices.values { d.closeAllTriggers() }
        for m in trappedMappings.values { m.untrap() }
        // Groups and their container refer to each other until detached, and an open
        // /dev/uioN and its device until the file is closed.
        for g in groups.values { g.container?.detach(g) }
        for file in files.values { if case .uio(let u) = file.kind { u.listeners.removeAll() } }
    }

    /// Runs `body` on the function at `address` under the kernel lock and wakes blocked
    /// readers (an interrupt may have arrived). Interrupt paths never schedule device calls.
    func withFunction<T>(_ address: PCIAddress, _ body: (PCIFunction) -> T) -> T? {
        lock.withLock {
            defer { lock.broadcast() }
            return functions[address].map(body)
        }
    }

    /// Device `reset()` and `configWritten` calls scheduled while the lock was held.
    func runPendingResets() {
        let (resets, writes): ([SimulatedDevice], [(SimulatedDevice, Int, Int, UInt32)]) = lock.withLock {
            var all: [SimulatedDevice] = []
            for d in vfioDevices.values where !d.pendingResets.isEmpty {
                all += d.pendingResets
                d.pendingResets.removeAll()
            }
            defer { pendingConfigNotifications.removeAll() }
            return (all, pendingConfigNotifications)
        }
        for d in resets { d.reset() }
        for (d, offset, width, value) in writes { d.configWritten(offset: offset, width: width, value: value) }
    }

    // MARK: Plugging devices

    /// Plugs `device` in at `address`, in IOMMU group `iommuGroup` (a new group of its own
    /// when nil), bound to `driver`. Functions sharing a group test viability.
    @discardableResult
    public func plug(
        _ device: SimulatedDevice, at address: PCIAddress, iommuGroup: Int? = nil, driver: DriverBinding = .vfioPCI
    ) throws(MockError) -> DeviceBus {
        let d = device.description
        try Self.validate(d, address: address)
        let bus = DeviceBus(address: address, kernel: self)
        try lock.withLock { () throws(MockError) in
            guard functions[address] == nil else { throw .addressInUse(address) }
            var addresses: [Int: UInt64] = [:]
            for bar in d.bars {
                let size = UInt64(bar.size)
                if bar.is64Bit {
                    nextBARAddress64 = (nextBARAddress64 + size - 1) / size * size
                    addresses[bar.index] = nextBARAddress64
                    nextBARAddress64 += size
                } else {
                    nextBARAddress32 = (nextBARAddress32 + size - 1) / size * size
                    addresses[bar.index] = nextBARAddress32
                    nextBARAddress32 += size
                }
            }
            let function: PCIFunction
            do { function = try PCIFunction(address: address, device: device, barAddresses: addresses) }
            catch { throw .hostFailure("could not create BAR memory for \(address): \(error)") }
            if d.interruptPin != 0 {
                function.hostSet(config: PCIConfig.interruptLine, width: 1, value: UInt32(configuration.firmwareInterruptLine))
            }
            if configuration.firmwareCommand != 0 {
                function.hostSet(config: PCIConfig.command, width: 2, value: UInt32(configuration.firmwareCommand))
            }
            let groupID = iommuGroup ?? ((groups.keys.max() ?? -1) + 1)
            let group = groups[groupID] ?? MockGroup(id: groupID, isNoIOMMU: configuration.noIOMMU)
            groups[groupID] = group
            group.functions.append(function)
            groupOfFunction[address] = group
            functions[address] = function
            bind(function, to: driver)
        }
        device.attach(to: bus)
        return bus
    }

    private static func validate(_ d: DeviceDescription, address: PCIAddress) throws(MockError) {
        for bar in d.bars {
            guard (0..<6).contains(bar.index), bar.size >= 16, bar.size & (bar.size - 1) == 0,
                  !bar.is64Bit || bar.index < 5
            else { throw .invalidDescription("\(address): BAR\(bar.index) of \(bar.size) bytes is not a power of two of at least 16 in BARs 0-5") }
        }
        if let msi = d.msi, ![1, 2, 4, 8, 16, 32].contains(msi.vectors) {
            throw .invalidDescription("\(address): MSI vector count \(msi.vectors) must be a power of two up to 32")
        }
        if let m = d.msix {
            guard (1...2048).contains(m.tableSize),
                  let t = d.bars.first(where: { $0.index == m.tableBAR }), m.tableOffset % 8 == 0, m.tableOffset + 16 * m.tableSize <= t.size,
                  let p = d.bars.first(where: { $0.index == m.pbaBAR }), m.pbaOffset % 8 == 0, m.pbaOffset + (m.tableSize + 63) / 64 * 8 <= p.size
            else { throw .invalidDescription("\(address): the MSI-X table or PBA does not fit its BAR") }
        }
    }

    /// Binds under the lock: creates the vfio-pci or uio state the driver keeps.
    func bind(_ function: PCIFunction, to driver: DriverBinding) {
        drivers[function.address] = driver
        let group = groupOfFunction[function.address]!
        switch driver {
        case .vfioPCI:
            let d = VFIOPCIDevice(function: function, group: group, index: nextVFIOIndex, configuration: configuration)
            nextVFIOIndex += 1
            vfioDevices[function.address] = d
            group.vfioDevices.append(d)
        case .uioPCIGeneric:
            let u = UIODevice(function: function, index: nextUIOIndex)
            nextUIOIndex += 1
            uioDevices[function.address] = u
            function.router = u
            let cmd = function.command | PCIConfig.commandMemory
            function.hostSet(config: PCIConfig.command, width: 2, value: UInt32(cmd))
        default:
            break
        }
    }

    // MARK: Test API

    /// Signals the device's REQ eventfd, as vfio-pci does when the host wants the device
    /// back (`vfio_pci_core_request`). Returns whether a REQ eventfd was armed.
    @discardableResult
    public func requestRemoval(of address: PCIAddress) -> Bool {
        lock.withLock {
            guard let d = vfioDevices[address], d.isOpen else { return false }
            d.removalRequests += 1
            guard let fd = d.reqTrigger else { return false }
            signalEventFD(fd)
            return true
        }
    }

    /// DMA accesses refused so far, oldest first.
    public var dmaFaults: [DMAFault] { lock.withLock { faults } }

    /// Forgets the DMA faults recorded so far.
    public func clearDMAFaults() { lock.withLock { faults.removeAll() } }

    /// How many loads and stores reached register BARs through mappings (each one faulted
    /// into the device model; see `BARDescription.Backing.registers`).
    public var registerAccessesThroughMappings: Int { lock.withLock { trappedMappingAccesses } }

    /// How many descriptors the mock has handed out and not seen closed (for leak checks).
    public var openFileCount: Int { lock.withLock { files.count } }

    /// The type1 mappings of the container `address`'s group is attached to, or the
    /// mappings of the IOAS its cdev is attached to.
    public func dmaMappings(of address: PCIAddress) -> [IOMMUMapping] {
        lock.withLock {
            guard let d = vfioDevices[address] else { return [] }
            if let ioas = d.attachedIOAS { return ioas.table.mappings }
            return d.group.container?.type1?.table.mappings ?? []
        }
    }

    /// Interrupt state of a vfio-pci device, for tests.
    public func interruptState(of address: PCIAddress) -> InterruptState? {
        lock.withLock {
            guard let d = vfioDevices[address], let f = functions[address] else { return nil }
            let type: InterruptState.Kind = switch d.irqType {
            case .none: .none
            case .intx: .intx
            case .msi: .msi
            case .msix: .msix
            }
            return InterruptState(
                kind: type, enabledVectors: d.vectorTriggers.keys.sorted(), allocatedVectors: d.allocatedVectors,
                intxMasked: d.intxMasked, errArmed: d.errTrigger != nil, reqArmed: d.reqTrigger != nil,
                command: f.command, droppedMessages: f.droppedMessages, removalRequests: d.removalRequests)
        }
    }

    /// How many times the function at `address` was reset since it was plugged: the reset
    /// vfio-pci makes on first open and last close, `VFIO_DEVICE_RESET`, and any other.
    public func deviceResets(of address: PCIAddress) -> Int { lock.withLock { functions[address]?.resets ?? 0 } }

    /// True while a vfio-pci file of the function (through its group or its cdev) is open.
    public func isDeviceOpen(_ address: PCIAddress) -> Bool { lock.withLock { vfioDevices[address]?.isOpen ?? false } }

    /// The physical config space of a function, as the hardware holds it.
    public func physicalConfig(of address: PCIAddress) -> [UInt8]? { lock.withLock { functions[address]?.config } }

    /// Registers memory the process allocated some other way as process memory, so it can be
    /// DMA-mapped and gets mock physical addresses.
    public func registerProcessMemory(_ buffer: UnsafeMutableRawBufferPointer, pageSize: Int = 4096) {
        lock.withLock {
            memory.register(start: UInt64(UInt(bitPattern: buffer.baseAddress)), length: UInt64(buffer.count), pageSize: UInt64(pageSize))
        }
    }

    /// The mock physical address of process memory at `pointer` (what pagemap reports).
    public func physicalAddress(of pointer: UnsafeRawPointer) -> UInt64? {
        lock.withLock { memory.physicalAddress(of: UInt64(UInt(bitPattern: pointer))) }
    }
}

/// A snapshot of a vfio-pci device's interrupt configuration.
public struct InterruptState: Sendable, Equatable {
    /// Which interrupt type vfio-pci has enabled (`vdev->irq_type`); `none` when none is.
    public enum Kind: Sendable, Equatable { case none, intx, msi, msix }
    /// The interrupt type enabled.
    public var kind: Kind
    /// Vectors with an eventfd, ascending.
    public var enabledVectors: [Int]
    /// MSI or MSI-X vectors the PCI core has allocated (grows with dynamic MSI-X); 0 otherwise.
    public var allocatedVectors: Int
    /// INTx is masked through VFIO (by the user, or automatically when it fired).
    public var intxMasked: Bool
    /// An ERR eventfd is set (VFIO_PCI_ERR_IRQ_INDEX).
    public var errArmed: Bool
    /// A REQ eventfd is set (VFIO_PCI_REQ_IRQ_INDEX), which a removal request signals.
    public var reqArmed: Bool
    /// The physical command register.
    public var command: UInt16
    /// Messages the device sent that reached no eventfd (bus mastering or MSI off, no vector).
    public var droppedMessages: Int
    /// Removal requests made while the device was open (``MockKernel/requestRemoval(of:)``,
    /// an unbind through sysfs), whether or not a REQ eventfd was armed.
    public var removalRequests: Int
}

/// Errors from the mock's own API (not from the modelled kernel, which reports `Errno`).
public enum MockError: Error, Equatable, CustomStringConvertible {
    /// ``MockKernel/plug(_:at:iommuGroup:driver:)`` was given an address that already holds a function.
    case addressInUse(PCIAddress)
    /// The ``DeviceDescription`` breaks a rule of PCI (the text says which, for which function).
    case invalidDescription(String)
    /// The host refused something the mock needs from it, such as BAR memory; the text says what.
    case hostFailure(String)

    /// The failure in a sentence: the address taken and what to do, what is wrong with a
    /// description, or the host's reason.
    public var description: String {
        switch self {
        case .addressInUse(let a): "a device is already plugged at \(a); unplug it or choose another address"
        case .invalidDescription(let why): "invalid device description: \(why)"
        case .hostFailure(let why): why
        }
    }
}
