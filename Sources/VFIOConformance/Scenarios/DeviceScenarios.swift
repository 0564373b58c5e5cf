#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import VFIOKit

/// The device: the selftests' `vfio_pci_device_test.c` (config-space IDs against sysfs, bus
/// mastering, every mmappable BAR, MSI and MSI-X triggered with DATA_NONE, reset) and the
/// edge cases of VFIO_DEVICE_SET_IRQS.
extension Conformance {
    static let deviceScenarios: [Scenario] = [
        Scenario("device-info", origin: "VFIO_DEVICE_GET_INFO, every region and interrupt index") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let info = try s.require(s.deviceInfo(dev.fd))
            for i in 0...info.regions { s.regionInfo(dev.fd, i) }
            for i in 0...info.irqs { s.irqInfo(dev.fd, i) }
        },
        Scenario("config-ids-match-sysfs", origin: "selftest vfio_pci_device_test config_space_read") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let config = try s.require(s.regionInfo(dev.fd, Int(VFIO_PCI_CONFIG_REGION_INDEX)))
            let vendor = s.configRead(dev.fd, config, 0, 2, "vendor")
            let device = s.configRead(dev.fd, config, 2, 2, "device")
            let sysVendor = s.sysfsAttribute(s.target.edu, .vendor).flatMap { UInt32($0.dropFirst(2), radix: 16) }
            let sysDevice = s.sysfsAttribute(s.target.edu, .device).flatMap { UInt32($0.dropFirst(2), radix: 16) }
            s.record("ids match sysfs: \(vendor != nil && vendor == sysVendor && device == sysDevice)")
        },
        Scenario("bus-master-toggle", origin: "selftest vfio_pci_device_test: command register bus master") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let config = try s.require(s.regionInfo(dev.fd, Int(VFIO_PCI_CONFIG_REGION_INDEX)))
            let command = try s.require(s.configRead(dev.fd, config, 4, 2, "command"))
            s.configWrite(dev.fd, config, 4, 2, command | 0x4, "command")
            _ = s.configRead(dev.fd, config, 4, 2, "command")
            s.configWrite(dev.fd, config, 4, 2, command & ~0x4, "command")
            _ = s.configRead(dev.fd, config, 4, 2, "command")
        },
        Scenario(
            "config-space-read", origin: "vfio_pci_config.c: the whole config region as vfio-pci virtualizes it, before and after enable"
        ) {
            s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let config = try s.require(s.regionInfo(dev.fd, Int(VFIO_PCI_CONFIG_REGION_INDEX)))
            s.configDump(dev.fd, config, "as opened")
            let command = try s.require(s.configRead(dev.fd, config, 4, 2, "command"))
            s.configWrite(dev.fd, config, 4, 2, command | 0x6, "command")
            for bar in 0..<6 { s.configWrite(dev.fd, config, 0x10 + 4 * bar, 4, 0xffff_ffff, "BAR\(bar)") }
            s.configDump(dev.fd, config, "enabled, BARs sized")
        },
        Scenario("bars-mmap", origin: "selftest vfio_pci_device_test validate_bars") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            for i in 0..<Int(VFIO_PCI_ROM_REGION_INDEX) {
                guard let region = s.regionInfo(dev.fd, i), region.flags & UInt32(VFIO_REGION_INFO_FLAG_MMAP) != 0 else { continue }
                let size = Int(region.size)
                if let p = s.step(
                    "mmap BAR\(i)", describe: { _ in "ok" },
                    { () throws(Errno) in
                        try s.system.mmap(
                            length: size, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: dev.fd, offset: Int64(region.offset))
                    })
                {
                    s.step("munmap BAR\(i)") { () throws(Errno) in try s.system.munmap(p, length: size) }
                }
            }
        },
        Scenario("msi-trigger", origin: "selftest vfio_pci_irq_test enable_trigger_disable (MSI)") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            s.irqInfo(dev.fd, Int(VFIO_PCI_MSI_IRQ_INDEX))
            try triggerTest(s, dev.fd, index: Int(VFIO_PCI_MSI_IRQ_INDEX), vectors: 1)
        },
        Scenario("msix-trigger", origin: "selftest vfio_pci_irq_test enable_trigger_disable (MSI-X)", needs: { $0.msix != nil }) {
            s throws(Session.Stop) in
            let dev = try s.openDevice(try s.require(s.target.msix))
            s.irqInfo(dev.fd, Int(VFIO_PCI_MSIX_IRQ_INDEX))
            try triggerTest(s, dev.fd, index: Int(VFIO_PCI_MSIX_IRQ_INDEX), vectors: 2)
        },
        Scenario("reset", origin: "selftest vfio_pci_device_test reset") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let info = try s.require(s.deviceInfo(dev.fd))
            s.record("reset flag \(info.flags & UInt32(VFIO_DEVICE_FLAGS_RESET) != 0)")
            s.ioctl("DEVICE_RESET", dev.fd, CVFIO_DEVICE_RESET, value: 0)
        },
        Scenario("set-irqs-edge-cases", origin: "VFIO_DEVICE_SET_IRQS validation (vfio_set_irqs_validate_and_prepare)") {
            s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let msi = Int(VFIO_PCI_MSI_IRQ_INDEX), intx = Int(VFIO_PCI_INTX_IRQ_INDEX)
            let none = VFIO_IRQ_SET_DATA_NONE, trigger = VFIO_IRQ_SET_ACTION_TRIGGER, eventfd = VFIO_IRQ_SET_DATA_EVENTFD
            s.setIRQs(dev.fd, "argsz too small", flags: none | trigger, index: msi, start: 0, count: 0, argsz: 19)
            s.setIRQs(dev.fd, "index 9", flags: none | trigger, index: 9, start: 0, count: 0)
            s.setIRQs(dev.fd, "two data types", flags: none | VFIO_IRQ_SET_DATA_BOOL | trigger, index: msi, start: 0, count: 1, data: [1])
            s.setIRQs(dev.fd, "two actions", flags: none | trigger | VFIO_IRQ_SET_ACTION_MASK, index: msi, start: 0, count: 1)
            s.setIRQs(dev.fd, "MSI beyond its vectors", flags: none | trigger, index: msi, start: 0, count: 2)
            s.setIRQs(dev.fd, "MSI trigger while off", flags: none | trigger, index: msi, start: 0, count: 1)
            s.setIRQs(dev.fd, "MSI disable while off", flags: none | trigger, index: msi, start: 0, count: 0)
            s.setIRQs(dev.fd, "INTx unmask while off", flags: none | VFIO_IRQ_SET_ACTION_UNMASK, index: intx, start: 0, count: 1)
            s.setIRQs(dev.fd, "MSI mask", flags: none | VFIO_IRQ_SET_ACTION_MASK, index: msi, start: 0, count: 1)
            let fd = try s.eventfd()
            s.setIRQs(dev.fd, "INTx enable", flags: eventfd | trigger, index: intx, start: 0, count: 1, data: s.eventfdData([fd]))
            s.setIRQs(
                dev.fd, "MSI enable while INTx on", flags: eventfd | trigger, index: msi, start: 0, count: 1, data: s.eventfdData([fd]))
            s.setIRQs(dev.fd, "INTx trigger", flags: none | trigger, index: intx, start: 0, count: 1)
            s.eventCount(fd, "INTx")
            s.setIRQs(dev.fd, "INTx mask", flags: none | VFIO_IRQ_SET_ACTION_MASK, index: intx, start: 0, count: 1)
            s.setIRQs(dev.fd, "INTx unmask", flags: none | VFIO_IRQ_SET_ACTION_UNMASK, index: intx, start: 0, count: 1)
            s.setIRQs(dev.fd, "INTx disable", flags: none | trigger, index: intx, start: 0, count: 0)
            s.setIRQs(
                dev.fd, "MSI enable with fd -1", flags: eventfd | trigger, index: msi, start: 0, count: 1,
                data: s.eventfdData([FileDescriptor(rawValue: -1)]))
            s.setIRQs(
                dev.fd, "MSI enable with a bad fd", flags: eventfd | trigger, index: msi, start: 0, count: 1,
                data: s.eventfdData([FileDescriptor(rawValue: 9999)]))
            s.setIRQs(dev.fd, "MSI disable", flags: none | trigger, index: msi, start: 0, count: 0)
            s.setIRQs(
                dev.fd, "REQ enable", flags: eventfd | trigger, index: Int(VFIO_PCI_REQ_IRQ_INDEX), start: 0, count: 1,
                data: s.eventfdData([fd]))
            s.setIRQs(
                dev.fd, "REQ disable", flags: eventfd | trigger, index: Int(VFIO_PCI_REQ_IRQ_INDEX), start: 0, count: 1,
                data: s.eventfdData([FileDescriptor(rawValue: -1)]))
            s.setIRQs(
                dev.fd, "ERR enable", flags: eventfd | trigger, index: Int(VFIO_PCI_ERR_IRQ_INDEX), start: 0, count: 1,
                data: s.eventfdData([fd]))
        },
    ]

    /// Enables `vectors` vectors with eventfds, fires the last with DATA_NONE and all with
    /// DATA_BOOL, reads each eventfd, then disables: `vfio_pci_irq_test` on one index.
    private static func triggerTest(_ s: Session, _ device: FileDescriptor, index: Int, vectors: Int) throws(Session.Stop) {
        let none = VFIO_IRQ_SET_DATA_NONE, trigger = VFIO_IRQ_SET_ACTION_TRIGGER
        var fds: [FileDescriptor] = []
        for _ in 0..<vectors { fds.append(try s.eventfd()) }
        s.setIRQs(
            device, "enable \(vectors)", flags: VFIO_IRQ_SET_DATA_EVENTFD | trigger, index: index, start: 0, count: vectors,
            data: s.eventfdData(fds))
        s.setIRQs(device, "trigger \(vectors - 1) DATA_NONE", flags: none | trigger, index: index, start: vectors - 1, count: 1)
        for (i, fd) in fds.enumerated() { s.eventCount(fd, "vector \(i)") }
        s.setIRQs(
            device, "trigger all DATA_BOOL", flags: VFIO_IRQ_SET_DATA_BOOL | trigger, index: index, start: 0, count: vectors,
            data: [UInt8](repeating: 1, count: vectors))
        for (i, fd) in fds.enumerated() { s.eventCount(fd, "vector \(i)") }
        s.setIRQs(device, "disable", flags: none | trigger, index: index, start: 0, count: 0)
        s.setIRQs(device, "trigger after disable", flags: none | trigger, index: index, start: 0, count: 1)
        for (i, fd) in fds.enumerated() { s.eventCount(fd, "vector \(i)") }
    }
}

/// The argsz protocol of every info ioctl: below, at and above each structure's minimum and
/// size, every word the kernel hands back (padding and what lies past argsz included).
extension Conformance {
    static let sweepScenarios: [Scenario] = [
        Scenario("info-argsz-sweep", origin: "VFIO uAPI argsz protocol (vfio_pci_ioctl_get_*_info, vfio_iommu_type1_get_info)") {
            s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            for argsz in [15, 16, 17, 20, 24, 32] {
                s.infoSweep("DEVICE_GET_INFO", dev.fd, CVFIO_DEVICE_GET_INFO, argsz: argsz, shown: 32)
            }
            for argsz in [31, 32, 40] {
                s.infoSweep(
                    "REGION_INFO 7", dev.fd, CVFIO_DEVICE_GET_REGION_INFO, argsz: argsz, index: UInt32(VFIO_PCI_CONFIG_REGION_INDEX),
                    shown: 40)
            }
            for argsz in [15, 16, 20] {
                s.infoSweep("IRQ_INFO 1", dev.fd, CVFIO_DEVICE_GET_IRQ_INFO, argsz: argsz, index: UInt32(VFIO_PCI_MSI_IRQ_INDEX), shown: 24)
            }
            if case .container(let fd) = dev.dma {
                for argsz in [15, 16, 20, 24, 32] {
                    s.infoSweep("IOMMU_GET_INFO", fd, CVFIO_IOMMU_GET_INFO, argsz: argsz, shown: 32)
                }
            }
        }
    ]
}
