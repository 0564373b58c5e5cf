import CVFIO
import SystemPackage
import VFIOKit

/// The device cdev with iommufd: the selftests' `vfio_iommufd_setup_test.c`.
extension Conformance {
    static let iommufdScenarios: [Scenario] = [
        Scenario("cdev-get-info-before-bind", origin: "selftest vfio_iommufd_setup_test get_info_before_bind", modes: [.iommufd]) {
            s throws(Session.Stop) in
            let dev = try s.require(s.open(try s.cdevNode(s.target.edu), as: "device cdev"))
            s.deviceInfo(dev)
            s.regionInfo(dev, 0)
        },
        Scenario("cdev-bind-bad-iommufd", origin: "selftest vfio_iommufd_setup_test bind_bad_iommufd", modes: [.iommufd]) {
            s throws(Session.Stop) in
            let dev = try s.require(s.open(try s.cdevNode(s.target.edu), as: "device cdev"))
            _ = s.bind(dev, iommufd: -2)
            let notIOMMUFD = try s.eventfd()
            _ = s.bind(dev, iommufd: notIOMMUFD.rawValue)
            s.deviceInfo(dev)
        },
        Scenario("cdev-second-bind", origin: "selftest vfio_iommufd_setup_test repeated_bind", modes: [.iommufd]) {
            s throws(Session.Stop) in
            let dev = try s.require(s.open(try s.cdevNode(s.target.edu), as: "device cdev"))
            let iommufd = try s.require(s.open(SysfsLayout.absolute(SysfsLayout.iommufd), as: "/dev/iommu"))
            _ = try s.require(s.bind(dev, iommufd: iommufd.rawValue))
            _ = s.bind(dev, iommufd: iommufd.rawValue)
        },
        Scenario("cdev-attach-detach", origin: "selftest vfio_iommufd_setup_test attach_detach_pt", modes: [.iommufd]) {
            s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            guard case .ioas(let iommufd, let ioas) = dev.dma else { return }
            s.detach(dev.fd)
            s.detach(dev.fd)
            _ = s.attach(dev.fd, to: ioas)
            let second = try s.require(s.allocateIOAS(iommufd))
            _ = s.attach(dev.fd, to: second)
            s.deviceInfo(dev.fd)
        },
        Scenario("cdev-attach-absent-ioas", origin: "selftest vfio_iommufd_setup_test attach_invalid_pt", modes: [.iommufd]) {
            s throws(Session.Stop) in
            let dev = try s.require(s.open(try s.cdevNode(s.target.edu), as: "device cdev"))
            let iommufd = try s.require(s.open(SysfsLayout.absolute(SysfsLayout.iommufd), as: "/dev/iommu"))
            let id = try s.require(s.bind(dev, iommufd: iommufd.rawValue))
            _ = s.attach(dev, to: UInt32.max)
            _ = s.attach(dev, to: id)
            _ = s.attach(dev, to: 0)
        },
        Scenario("cdev-while-group-open", origin: "VFIO: the group and the cdev exclude each other", modes: [.iommufd]) {
            s throws(Session.Stop) in
            let group = try s.require(s.openGroup(s.target.edu))
            let dev = try s.require(s.open(try s.cdevNode(s.target.edu), as: "device cdev"))
            let iommufd = try s.require(s.open(SysfsLayout.absolute(SysfsLayout.iommufd), as: "/dev/iommu"))
            _ = s.bind(dev, iommufd: iommufd.rawValue)
            s.close(group)
            _ = s.bind(dev, iommufd: iommufd.rawValue)
            _ = try s.openGroup(s.target.edu)
        },
        Scenario("ioas-iova-ranges", origin: "DPDK/SPDK: IOAS_IOVA_RANGES answered with EMSGSIZE and retried", modes: [.iommufd]) {
            s throws(Session.Stop) in
            let dev = try s.require(s.open(try s.cdevNode(s.target.edu), as: "device cdev"))
            let iommufd = try s.require(s.open(SysfsLayout.absolute(SysfsLayout.iommufd), as: "/dev/iommu"))
            _ = try s.require(s.bind(dev, iommufd: iommufd.rawValue))
            let ioas = try s.require(s.allocateIOAS(iommufd))
            _ = s.iovaRanges(.ioas(iommufd: iommufd, id: ioas))
            _ = try s.require(s.attach(dev, to: ioas))
            _ = s.iovaRanges(.ioas(iommufd: iommufd, id: ioas))
        },
    ]
}
