import SystemPackage
import CVFIO
import PCI

/// An IOMMU group and its `/dev/vfio/N` (or `noiommu-N`) node (`drivers/vfio/group.c`).
final class MockGroup {
    let id: Int
    let isNoIOMMU: Bool
    /// Every function in the group, whatever it is bound to.
    var functions: [PCIFunction] = []
    /// The vfio-pci devices of the group (functions bound to vfio-pci).
    var vfioDevices: [VFIOPCIDevice] = []
    /// The group file is open; device fds obtained from it keep it open after it is closed.
    var fileReferences = 0
    var container: MockContainer?
    /// The iommufd set as the group's container (vfio's `group->iommufd`, the compat path).
    var iommufd: IOMMUFDContext?
    /// Devices of this group bound through their cdev, which blocks opening the group.
    var cdevOpenCount = 0

    init(id: Int, isNoIOMMU: Bool) {
        self.id = id
        self.isNoIOMMU = isNoIOMMU
    }

    var nodeName: String { isNoIOMMU ? "noiommu-\(id)" : "\(id)" }

    /// A kernel driver that manages its own DMA (anything but vfio-pci and pci-stub) owns
    /// the group's DMA, which makes the group unusable by userspace.
    func claimedByKernelDriver(drivers: [PCIAddress: DriverBinding]) -> Bool {
        functions.contains { drivers[$0.address]?.claimsDMA ?? false }
    }

    /// Whether a device of the group is bound through its cdev to an iommufd other than `ctx`:
    /// `iommufd_device_bind` claims the group's DMA ownership with the iommufd as owner
    /// (`iommu_device_claim_dma_owner`), and a group has one owner, so the second claim fails
    /// with EPERM.
    func dmaOwnedByOtherIOMMUFD(than ctx: IOMMUFDContext) -> Bool {
        vfioDevices.contains { device in
            guard case .cdev(let owner, _)? = device.opener else { return false }
            return owner !== ctx
        }
    }

    /// `vfio_group_fops_open`.
    func open() throws(Errno) {
        guard !vfioDevices.isEmpty else { throw .operationNotSupportedByDevice }
        guard cdevOpenCount == 0, fileReferences == 0 else { throw .resourceBusy }
        fileReferences = 1
    }

    /// Drops one reference on the group file; the last one detaches the container.
    func release() {
        fileReferences -= 1
        if fileReferences == 0, let c = container { c.detach(self) }
        if fileReferences == 0 { iommufd = nil }
    }

    /// `VFIO_GROUP_GET_STATUS`.
    func status(_ arg: UserPointer, drivers: [PCIAddress: DriverBinding]) throws(Errno) {
        // struct vfio_group_status { argsz, flags }: minsz is all of it.
        var status = try InfoReply(arg, size: 8, minsz: 8)
        var flags: UInt32 = 0
        if container != nil || iommufd != nil {
            flags = UInt32(VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE)
        } else if !claimedByKernelDriver(drivers: drivers) {
            flags = UInt32(VFIO_GROUP_FLAGS_VIABLE)
        }
        status.store(flags, at: 4)
        status.copyOut(to: arg)
    }

    /// `VFIO_GROUP_SET_CONTAINER` with a container fd.
    func setContainer(_ c: MockContainer, drivers: [PCIAddress: DriverBinding]) throws(Errno) {
        guard container == nil, iommufd == nil else { throw .invalidArgument }
        if !c.groups.isEmpty && c.isNoIOMMU != isNoIOMMU { throw .notPermitted }
        if !isNoIOMMU && claimedByKernelDriver(drivers: drivers) { throw .notPermitted }
        c.attach(self)
        container = c
    }

    /// `VFIO_GROUP_SET_CONTAINER` with an iommufd (`vfio_group_ioctl_set_container`): no
    /// viability check here; the device open claims DMA ownership.
    func setIOMMUFD(_ ctx: IOMMUFDContext) throws(Errno) {
        guard container == nil, iommufd == nil else { throw .invalidArgument }
        ctx.compatIOASCreate()
        iommufd = ctx
    }

    /// `VFIO_GROUP_UNSET_CONTAINER`: only while no device of the group is open.
    func unsetContainer() throws(Errno) {
        guard container != nil || iommufd != nil else { throw .invalidArgument }
        guard fileReferences == 1 else { throw .resourceBusy }
        container?.detach(self)
        iommufd = nil
    }

    /// The device named `name` for `VFIO_GROUP_GET_DEVICE_FD`: requires a container with
    /// an IOMMU driver set (`EINVAL`), and a vfio-pci device of that name (`ENODEV`).
    func deviceForOpen(named name: String) throws(Errno) -> VFIOPCIDevice {
        guard let device = vfioDevices.first(where: { $0.address.description == name }) else { throw .operationNotSupportedByDevice }
        guard iommufd != nil || container?.driver != nil else { throw .invalidArgument }
        return device
    }
}
