import SystemPackage
import CVFIO

/// One open of `/dev/iommu`: its objects (IOASes and bound devices) and its ioctls, with the
/// size and error rules of `drivers/iommu/iommufd/main.c` and `ioas.c`.
final class IOMMUFDContext {
    enum Object {
        case ioas(IOAddressSpace)
        case device(PCIAddress)
        /// The paging domain iommufd creates when a device attaches to an IOAS.
        case hwpt(IOAddressSpace)
    }

    var objects: [UInt32: Object] = [:]
    /// Bound device id → the HWPT it is attached to.
    private var attachments: [UInt32: UInt32] = [:]
    let configuration: MockKernel.Configuration
    /// The IOAS a VFIO group set on this iommufd maps into (`ictx->vfio_ioas`).
    var compatIOAS: UInt32?
    /// VFIO_SET_IOMMU chose type1 (v1): unmaps may cut mappings.
    var compatSplits = false

    init(configuration: MockKernel.Configuration) { self.configuration = configuration }

    /// The lowest free object id, from 1, as `xa_alloc` hands them out.
    func allocateID() -> UInt32 {
        var id: UInt32 = 1
        while objects[id] != nil { id += 1 }
        return id
    }

    func ioas(_ id: UInt32) throws(Errno) -> IOAddressSpace {
        guard case .ioas(let ioas)? = objects[id] else { throw .noSuchFileOrDirectory }
        return ioas
    }

    func bindDevice(_ address: PCIAddress) -> UInt32 {
        let id = allocateID()
        objects[id] = .device(address)
        return id
    }

    func unbindDevice(_ id: UInt32) {
        detach(device: id)
        objects[id] = nil
    }

    /// `iommufd_device_attach`/`_replace` to an IOAS or HWPT id: attaching to an IOAS makes
    /// (or reuses) its automatic HWPT, whose id is returned as the kernel writes it back.
    func attach(device: UInt32, to ptID: UInt32) throws(Errno) -> (hwpt: UInt32, ioas: IOAddressSpace) {
        let hwptID: UInt32
        let ioas: IOAddressSpace
        switch objects[ptID] {
        case nil: throw .noSuchFileOrDirectory
        case .device?: throw .invalidArgument
        case .hwpt(let a)?:
            hwptID = ptID
            ioas = a
        case .ioas(let a)?:
            ioas = a
            if let existing = objects.first(where: { if case .hwpt(let h) = $0.value { h === a } else { false } }) {
                hwptID = existing.key
            } else {
                try a.attach(device: device)
                a.detach(device: device)
                hwptID = allocateID()
                objects[hwptID] = .hwpt(a)
            }
        }
        if attachments[device] == hwptID { return (hwptID, ioas) }
        do { try ioas.attach(device: device) } catch {
            dropHWPTIfUnused(hwptID)
            throw error
        }
        detach(device: device)
        attachments[device] = hwptID
        return (hwptID, ioas)
    }

    func detach(device: UInt32) {
        guard let hwptID = attachments.removeValue(forKey: device), case .hwpt(let ioas)? = objects[hwptID] else { return }
        ioas.detach(device: device)
        dropHWPTIfUnused(hwptID)
    }

    /// An automatic HWPT goes away with its last device.
    private func dropHWPTIfUnused(_ id: UInt32) {
        if !attachments.values.contains(id) { objects[id] = nil }
    }

    /// Dispatches an iommufd ioctl, or a VFIO container ioctl to the compat layer:
    /// `ENOTTY` for one the mock does not serve.
    func ioctl(_ request: UInt, _ argument: UInt, memory: ProcessMemory) throws(Errno) -> Int32 {
        let commands: [UInt: (minSize: Int, size: Int)] = [
            UInt(CVFIO_IOMMUFD_DESTROY): (8, 8), UInt(CVFIO_IOMMUFD_IOAS_ALLOC): (12, 12),
            UInt(CVFIO_IOMMUFD_IOAS_IOVA_RANGES): (32, 32), UInt(CVFIO_IOMMUFD_IOAS_MAP): (40, 40),
            UInt(CVFIO_IOMMUFD_IOAS_UNMAP): (24, 24),
        ]
        guard let shape = commands[request] else {
            guard let result = try compatIOCTL(request, argument, memory: memory) else { throw .inappropriateIOCTLForDevice }
            return result
        }
        let arg = try UserPointer(argument)
        let userSize = Int(arg.load(0, as: UInt32.self))
        guard userSize >= shape.minSize else { throw .invalidArgument }
        if userSize > shape.size, arg.bytes(at: shape.size, count: userSize - shape.size).contains(where: { $0 != 0 }) {
            throw .argListTooLong
        }
        switch request {
        case UInt(CVFIO_IOMMUFD_DESTROY): try destroy(arg.load(4))
        case UInt(CVFIO_IOMMUFD_IOAS_ALLOC):
            guard arg.load(4, as: UInt32.self) == 0 else { throw .notSupported }
            let id = allocateID()
            objects[id] = .ioas(IOAddressSpace(id: id, deviceRanges: configuration.iovaRanges))
            arg.store(id, at: 8)
        case UInt(CVFIO_IOMMUFD_IOAS_IOVA_RANGES): try iovaRanges(arg)
        case UInt(CVFIO_IOMMUFD_IOAS_MAP): try map(arg, memory: memory)
        default: try unmap(arg)
        }
        return 0
    }

    private func destroy(_ id: UInt32) throws(Errno) {
        switch objects[id] {
        case nil: throw .noSuchFileOrDirectory
        case .device?, .hwpt?: throw .resourceBusy
        case .ioas(let ioas)?:
            guard ioas.attachedDevices.isEmpty else { throw .resourceBusy }
            _ = ioas.unmapAll()
            objects[id] = nil
        }
    }

    /// Fills as many ranges as `num_iovas` allows, always reports the true count, and fails
    /// with `EMSGSIZE` when the array was too short.
    private func iovaRanges(_ arg: UserPointer) throws(Errno) {
        guard arg.load(12, as: UInt32.self) == 0 else { throw .notSupported }
        let ioas = try ioas(arg.load(4))
        let capacity = arg.load(8, as: UInt32.self)
        let ranges = ioas.allowedRanges
        if capacity > 0 {
            guard let out = UnsafeMutableRawPointer(bitPattern: UInt(arg.load(16, as: UInt64.self))) else { throw .badAddress }
            for (i, r) in ranges.prefix(Int(capacity)).enumerated() {
                out.storeBytes(of: r.first, toByteOffset: 16 * i, as: UInt64.self)
                out.storeBytes(of: r.last, toByteOffset: 16 * i + 8, as: UInt64.self)
            }
        }
        arg.store(UInt32(ranges.count), at: 8)
        arg.store(ioas.alignment, at: 24)
        if ranges.count > capacity { throw .messageTooLong }
    }

    private func map(_ arg: UserPointer, memory: ProcessMemory) throws(Errno) {
        let flags: UInt32 = arg.load(4)
        let fixed = UInt32(IOMMU_IOAS_MAP_FIXED_IOVA.rawValue), writeable = UInt32(IOMMU_IOAS_MAP_WRITEABLE.rawValue)
        let readable = UInt32(IOMMU_IOAS_MAP_READABLE.rawValue)
        guard flags & ~(fixed | writeable | readable) == 0, arg.load(12, as: UInt32.self) == 0 else { throw .notSupported }
        let vaddr: UInt64 = arg.load(16), length: UInt64 = arg.load(24), iova: UInt64 = arg.load(32)
        guard iova < .max, length < .max else { throw .overflow }
        guard flags & (writeable | readable) != 0 else { throw .invalidArgument }
        let ioas = try ioas(arg.load(8))
        let chosen = try mapUser(
            ioas, vaddr: vaddr, length: length, iova: flags & fixed != 0 ? iova : nil,
            readable: flags & readable != 0, writable: flags & writeable != 0, memory: memory)
        arg.store(chosen, at: 32)
    }

    /// `iopt_map_user_pages`: process memory at `vaddr` into `ioas`, at `iova` or where it fits.
    func mapUser(_ ioas: IOAddressSpace, vaddr: UInt64, length: UInt64, iova: UInt64?, readable: Bool, writable: Bool,
                 memory: ProcessMemory) throws(Errno) -> UInt64 {
        guard length == 0 || memory.contains(start: vaddr, length: length) else { throw .badAddress }
        return try ioas.map(
            vaddr: vaddr, length: length, iova: iova, readable: readable, writable: writable, pinned: memory.pin(start: vaddr, length: length))
    }

    private func unmap(_ arg: UserPointer) throws(Errno) {
        let ioas = try ioas(arg.load(4))
        let iova: UInt64 = arg.load(8), length: UInt64 = arg.load(16)
        let unmapped: UInt64
        if iova == 0 && length == .max {
            unmapped = ioas.unmapAll()
        } else {
            guard iova < .max, length < .max else { throw .overflow }
            guard length != 0 else { throw .invalidArgument }
            guard iova &+ (length - 1) >= iova else { throw .overflow }
            unmapped = try ioas.unmap(first: iova, last: iova + (length - 1))
            guard unmapped != 0 else { throw .noSuchFileOrDirectory }
        }
        arg.store(unmapped, at: 16)
    }
}

import PCI
