#if canImport(Glibc)
import Glibc
#endif
import Logging
import PCI
import Synchronization
import SystemPackage

/// One IO address space that devices share: a VFIO container holding any number of IOMMU
/// groups, an iommufd IOAS with any number of device cdevs attached, or, without an IOMMU,
/// the physical address space.
///
/// Devices open into a context with ``open(_:)``. A group is opened once per context however
/// many of its functions are opened, and a DMA buffer from ``dma`` is reachable by every device
/// in the context. `PCIDevice.open(_:backend:system:logger:)` makes a private context for one
/// device, so simple drivers need not know contexts exist.
///
/// The context's backend is fixed by its first device; later devices must use the same one.
/// ``close()`` closes every device still open in it, removes every DMA mapping, then releases
/// the groups and the container or IOAS. Thread-safe.
public final class IOMMUContext: Sendable {
    /// The kernel, or a model of it.
    public let system: any SystemCalls
    /// DMA buffers and mappings, shared by every device of the context.
    public let dma: DMASpace
    let logger: Logger
    /// The backend asked for at creation (`.auto` until the first device resolves it).
    let requested: Backend
    private let forcedMode: IOMMUMode?

    private enum Setup {
        case groups(GroupContainer, Type1Container?)
        case iommufd(IOMMUFDAddressSpace)
        case uio
    }
    private struct State {
        var setup: Setup?
        var mode: IOMMUMode?
        var members: [PCIAddress: Member] = [:]
        var closed = false
    }
    private struct Member {
        weak var device: PCIDevice?
        let group: Int?
    }
    private let state = Mutex(State())

    /// A context whose backend is chosen by its first device (`.auto`: see ``Backend``).
    public init(backend: Backend = .auto, system: any SystemCalls = HostSystemCalls.shared, logger: Logger = .vfiokitSilent) {
        self.system = system
        self.logger = logger
        requested = backend
        forcedMode = nil
        dma = DMASpace(system: system, logger: logger)
    }

    /// A context in exactly `mode`, as the kernel's VFIO selftests choose one.
    public init(mode: IOMMUMode, system: any SystemCalls = HostSystemCalls.shared, logger: Logger = .vfiokitSilent) {
        self.system = system
        self.logger = logger
        requested = mode.backend
        forcedMode = mode
        dma = DMASpace(system: system, logger: logger)
    }

    deinit { close() }

    /// The mode in use, once the first device opened.
    public var mode: IOMMUMode? { state.withLock { $0.mode } }

    /// True once ``close()`` was called.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// The devices open in the context now.
    public var devices: [PCIDevice] { state.withLock { $0.members.values.compactMap(\.device) } }

    /// Opens the function at `address` into this context.
    public func open(_ address: PCIAddress) throws(VFIOError) -> PCIDevice {
        try PCIDevice.open(address, in: self)
    }

    /// How an opened function is reached, for ``PCIDevice``.
    struct Attachment {
        let access: any DeviceAccess
        let backend: Backend
        let group: Int?
    }

    /// Opens the function's files and joins it to the address space. On failure nothing it
    /// opened stays open and the context is as it was.
    func attach(_ address: PCIAddress) throws(VFIOError) -> Attachment {
        try OpenDevices.claim(address, system: system)
        do throws(VFIOError) {
            let attachment = try state.withLock { (s) throws(VFIOError) -> Attachment in
                guard !s.closed else { throw .contextClosed(operation: "opening \(address)") }
                let attachment = try attach(address, state: &s)
                s.members[address] = Member(device: nil, group: attachment.group)
                return attachment
            }
            logger.info(
                "opened device",
                metadata: [
                    "device": "\(address)", "backend": "\(attachment.backend)", "mode": "\(mode?.name ?? "-")",
                    "group": "\(attachment.group.map(String.init) ?? "-")",
                ])
            return attachment
        } catch {
            OpenDevices.release(address, system: system)
            throw error
        }
    }

    /// Records the device made from an attachment, so ``close()`` can close it.
    func adopt(_ device: PCIDevice) {
        state.withLock { $0.members[device.address]?.device = device }
    }

    private func attach(_ address: PCIAddress, state s: inout State) throws(VFIOError) -> Attachment {
        let sysfs = DeviceSysfs(address: address, system: system)
        let backend: Backend
        if let mode = s.mode { backend = mode.backend } else { backend = try Backend.resolve(requested, sysfs: sysfs) }
        let driver = try sysfs.driver()
        let needed = (backend == .uio ? DriverName.uioPCIGeneric : .vfioPCI).rawValue
        guard driver == needed else {
            if s.mode != nil, let driver, [DriverName.uioPCIGeneric.rawValue, DriverName.vfioPCI.rawValue].contains(driver) {
                throw .contextMismatch(address, context: backend, driver: driver)
            }
            throw .wrongDriver(address, driver: driver, needed: needed)
        }
        switch backend {
        case .legacy, .noIOMMU: return try attachToContainer(sysfs, backend: backend, state: &s)
        case .iommufd: return try attachToIOAS(sysfs, state: &s)
        case .uio: return try attachUIO(sysfs, state: &s)
        case .auto: preconditionFailure("resolve never returns .auto")
        }
    }

    /// The group path: the group is opened and joined once, then the device fd comes from it.
    private func attachToContainer(_ sysfs: DeviceSysfs, backend: Backend, state s: inout State) throws(VFIOError) -> Attachment {
        guard let group = try sysfs.iommuGroup() else {
            throw .backendUnavailable(backend, reason: "\(sysfs.address) has no IOMMU group")
        }
        let container: GroupContainer
        let type1: Type1Container?
        if case .groups(let c, let t)? = s.setup {
            (container, type1) = (c, t)
        } else {
            container = try GroupContainer(candidates: forcedMode.map { [$0] } ?? IOMMUMode.candidates(for: backend), system: system)
            type1 = nil
        }
        let isNew = s.setup == nil
        let opened: (device: FileDescriptor, newGroup: Bool)
        do {
            opened = try container.openDevice(sysfs.address, group: group)
        } catch {
            if isNew { container.close() }
            throw error
        }
        var opening: VFIODeviceFile?
        do throws(VFIOError) {
            let access = try VFIODeviceFile(fd: opened.device, address: sysfs.address, system: system, logger: logger)
            opening = access
            if isNew {
                s.setup = .groups(container, try installMapper(for: container))
                s.mode = container.mode
                if container.mode == .type1, forcedMode == nil {
                    logger.notice("the kernel offers no type1 v2 IOMMU; using \(container.mode)")
                }
            } else if opened.newGroup, let type1 {
                dma.restrict(to: try type1.currentRanges())
            }
            return Attachment(access: access, backend: backend, group: group)
        } catch {
            // The device file is set up but the IOMMU behind it is not: close the device first.
            opening?.close()
            container.deviceClosed(group: group, keepLast: !isNew)
            if isNew { container.close() }
            throw error
        }
    }

    /// The context's DMA once its first group set the container's IOMMU up.
    private func installMapper(for container: GroupContainer) throws(VFIOError) -> Type1Container? {
        if container.mode == .noIOMMU {
            let physical = try PhysicalAddressSpace(system: system)
            dma.install(physical, ranges: [0...UInt64.max], alignment: physical.pageSize)
            return nil
        }
        let type1 = try Type1Container(fd: container.fd, system: system)
        dma.install(type1, ranges: type1.iovaRanges, alignment: type1.iovaAlignment)
        return type1
    }

    /// The cdev path: the device's `/dev/vfio/devices/vfioN` is bound and attached to the IOAS.
    private func attachToIOAS(_ sysfs: DeviceSysfs, state s: inout State) throws(VFIOError) -> Attachment {
        guard let node = try sysfs.children(.vfioDev, prefix: "vfio").first else {
            throw .backendUnavailable(.iommufd, reason: "\(sysfs.address) has no VFIO cdev (kernel without CONFIG_VFIO_DEVICE_CDEV?)")
        }
        let path = SysfsLayout.absolute(SysfsLayout.vfioDeviceNode(node))
        let opened: FileDescriptor
        do {
            opened = try system.open(path, O_RDWR)
        } catch .noSuchFileOrDirectory {
            // Linux before 6.6 lists vfio-dev in sysfs but makes no /dev/vfio/devices node.
            throw .backendUnavailable(
                .iommufd,
                reason:
                    "\(path) does not exist: the kernel has no VFIO device cdevs (CONFIG_VFIO_DEVICE_CDEV, Linux 6.6 and later); use the legacy backend"
            )
        } catch {
            throw error.vfio(SystemCall("open", path: path, device: sysfs.address))
        }
        // On a failure before the device file takes it, it closes as it goes out of scope.
        let owned = OwnedFileDescriptor(opened, name: path, system: system)
        let device = owned.rawValue
        let space: IOMMUFDAddressSpace
        let isNew: Bool
        if case .iommufd(let existing)? = s.setup {
            (space, isNew) = (existing, false)
        } else {
            (space, isNew) = (try IOMMUFDAddressSpace(system: system), true)
        }
        let group = try? sysfs.iommuGroup()
        let ranges: [ClosedRange<UInt64>]
        let alignment: UInt64
        do throws(VFIOError) {
            (ranges, alignment) = try space.attach(device: device, address: sysfs.address, group: group)
        } catch {
            _ = consume owned  // the device's file first, then its address space
            if isNew { space.close() }
            throw error
        }
        _ = owned.release()
        let access: VFIODeviceFile
        do {
            access = try VFIODeviceFile(fd: device, address: sysfs.address, system: system, logger: logger)  // closes `device` on failure
        } catch {
            if isNew { space.close() }
            throw error
        }
        if isNew {
            dma.install(space, ranges: ranges, alignment: alignment)
            s.setup = .iommufd(space)
            s.mode = .iommufd
        } else {
            dma.restrict(to: ranges)
        }
        return Attachment(access: access, backend: .iommufd, group: group)
    }

    /// UIO: the device's files, with DMA by physical address.
    private func attachUIO(_ sysfs: DeviceSysfs, state s: inout State) throws(VFIOError) -> Attachment {
        let files = try UIODeviceFiles.open(sysfs)
        if s.setup == nil {
            do {
                let physical = try PhysicalAddressSpace(system: system)
                dma.install(physical, ranges: [0...UInt64.max], alignment: physical.pageSize)
            } catch {
                files.close()
                throw error
            }
            s.setup = .uio
            s.mode = .uio
        }
        return Attachment(access: files, backend: .uio, group: nil)
    }

    /// A device of the context closed its files: its group is released with its last device,
    /// except the container's last group while DMA is mapped (that would drop the mappings).
    func detach(_ address: PCIAddress) {
        let hasMappings = dma.mappingCount > 0
        state.withLock { s in
            guard let member = s.members.removeValue(forKey: address) else { return }
            if case .groups(let container, _)? = s.setup, let group = member.group {
                container.deviceClosed(group: group, keepLast: hasMappings && !s.closed)
            }
        }
        OpenDevices.release(address, system: system)
    }

    /// Closes every device still open in the context, removes every DMA mapping, then
    /// releases the groups and the container or IOAS. Safe to call more than once.
    public func close() {
        let devices = state.withLock { (s) -> [PCIDevice]? in
            guard !s.closed else { return nil }
            s.closed = true
            return s.members.values.compactMap(\.device)
        }
        guard let devices else { return }
        for device in devices { device.close() }
        dma.close()
        state.withLock { s in
            if case .groups(let container, _)? = s.setup { container.close() }
            s.setup = nil
        }
    }
}

/// The devices open in this process, per kernel (or kernel model): a function is opened once.
enum OpenDevices {
    private struct Key: Hashable {
        let system: ObjectIdentifier
        let address: PCIAddress
    }
    private static let open = Mutex<Set<Key>>([])

    static func claim(_ address: PCIAddress, system: any SystemCalls) throws(VFIOError) {
        let claimed = open.withLock { $0.insert(Key(system: ObjectIdentifier(system), address: address)).inserted }
        guard claimed else { throw .alreadyOpen(address) }
    }

    static func release(_ address: PCIAddress, system: any SystemCalls) {
        _ = open.withLock { $0.remove(Key(system: ObjectIdentifier(system), address: address)) }
    }
}
