import CVFIO
import SystemPackage
import VFIOKit

/// Groups and containers: the pitfalls of opening a group twice, of a group that is not
/// viable, and of asking for a device the group does not have.
extension Conformance {
    static let groupScenarios: [Scenario] = [
        Scenario("group-second-open", origin: "DPDK: a second open of a group (EBUSY)", modes: IOMMUMode.groupModes) {
            s throws(Session.Stop) in
            _ = try s.require(s.openGroup(s.target.edu))
            _ = try s.openGroup(s.target.edu)
        },
        Scenario(
            "group-not-viable", origin: "a group a host driver also holds", modes: IOMMUMode.groupModes,
            needs: { $0.nonViable != nil }
        ) { s throws(Session.Stop) in
            let address = try s.require(s.target.nonViable)
            let container = try s.require(s.open(s.mode.containerNode, as: "container \(s.mode.containerNode)"))
            let group = try s.require(s.openGroup(address))
            s.groupStatus(group)
            _ = s.setContainer(group, container)
            s.ioctl("SET_IOMMU \(s.mode.iommuTypeArgument)", container, CVFIO_SET_IOMMU, value: s.mode.iommuTypeArgument)
            _ = s.deviceFD(group, address)
        },
        Scenario("group-device-by-wrong-name", origin: "VFIO_GROUP_GET_DEVICE_FD with a name not in the group", modes: IOMMUMode.groupModes)
        {
            s throws(Session.Stop) in
            let (_, group) = try s.openContainerWithIOMMU(for: s.target.edu)
            _ = s.deviceFD(group, try! PCIAddress(parsing: "0000:00:1f.7"))
            _ = try s.require(s.deviceFD(group, s.target.edu))
            s.groupStatus(group)
        },
    ]
}

import PCI
