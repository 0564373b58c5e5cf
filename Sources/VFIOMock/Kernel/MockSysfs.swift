#if canImport(Glibc)
import Glibc
#endif
import PCI
import SystemPackage

/// The part of sysfs the mock models, for the functions plugged into it:
///
/// - `/sys/bus/pci/devices/ADDR/`: `vendor`, `device`, `class`, `subsystem_vendor`,
///   `subsystem_device`, `revision`, `irq`, `resource`, `driver_override`, `config`
///   (pread/pwrite of the physical config space), `resourceN` (mmap of memory BARs), the
///   `driver` and `iommu_group` links, `vfio-dev/vfioN` and `uio/uioN`;
/// - `/sys/bus/pci/drivers/{vfio-pci,uio_pci_generic,pci-stub}/{bind,unbind}` and
///   `/sys/bus/pci/drivers_probe`, which rebind a function (honouring `driver_override`);
/// - `/sys/kernel/iommu_groups/N/devices/`;
/// - `/sys/class/uio/uioN/{name,version,event,device,maps/mapM/{addr,size,offset,name}}`.
///
/// Anything else is `ENOENT`.
extension MockKernel {
    private static let boundDrivers: [String: DriverBinding] = [
        "vfio-pci": .vfioPCI, "uio_pci_generic": .uioPCIGeneric, "pci-stub": .pciStub,
    ]

    private func hex(_ v: UInt64, _ digits: Int) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, digits - s.count)) + s
    }

    /// The function and the rest of a `/sys/bus/pci/devices/ADDR/...` path.
    private func devicePath(_ path: String) -> (PCIFunction, [Substring])? {
        let parts = path.split(separator: "/")
        guard parts.count >= 5, parts[0] == "sys", parts[1] == "bus", parts[2] == "pci", parts[3] == "devices",
            let a = try? PCIAddress(parsing: String(parts[4])), let f = functions[a]
        else { return nil }
        return (f, Array(parts[5...]))
    }

    private func uioByName(_ name: Substring) -> UIODevice? {
        guard name.hasPrefix("uio"), let n = Int(name.dropFirst(3)) else { return nil }
        return uioDevices.values.first { $0.index == n }
    }

    private func resourceText(_ f: PCIFunction) -> String {
        var lines: [String] = []
        for i in 0..<13 {
            if let bar = f.description.bars.first(where: { $0.index == i }), let start = f.barAddresses[i] {
                var flags: UInt64 = 0x40200
                if bar.is64Bit { flags |= 0x100000 }
                if bar.prefetchable { flags |= 0x2000 }
                lines.append("\(hex(start, 16)) \(hex(start + UInt64(bar.size) - 1, 16)) \(hex(flags, 16))")
            } else {
                lines.append("\(hex(0, 16)) \(hex(0, 16)) \(hex(0, 16))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func text(_ s: String) -> OpenFile.Kind { .text(Array((s + "\n").utf8), write: nil) }

    func sysfsOpen(_ path: String, flags: Int32) throws(Errno) -> OpenFile.Kind {
        let parts = path.split(separator: "/")
        if let (f, rest) = devicePath(path), rest.count == 1 {
            let d = f.description
            switch rest[0] {
            case "vendor": return text(hex(UInt64(d.vendorID), 4))
            case "device": return text(hex(UInt64(d.deviceID), 4))
            case "class": return text(hex(UInt64(d.classCode), 6))
            case "subsystem_vendor": return text(hex(UInt64(d.subsystemVendorID), 4))
            case "subsystem_device": return text(hex(UInt64(d.subsystemID), 4))
            case "revision": return text(hex(UInt64(d.revision), 2))
            case "irq": return text(d.interruptPin == 0 ? "0" : "10")
            case "resource": return .text(Array(resourceText(f).utf8), write: nil)
            case "config": return .config(f)
            case "driver_override":
                return .text(Array((DriverCore.overrideText(overrides[f.address]) + "\n").utf8)) {
                    [unowned self] (s: String) throws(Errno) in
                    self.overrides[f.address] = DriverCore.override(written: s.trimmingCharacters(in: "\n"))
                }
            case let r where r.hasPrefix("resource"):
                guard let n = Int(r.dropFirst(8)), f.description.bars.contains(where: { $0.index == n }) else { break }
                return .resource(f, bar: n)
            default: break
            }
        }
        if parts.count == 6, parts[0] == "sys", parts[1] == "bus", parts[2] == "pci", parts[3] == "drivers",
            let driver = Self.boundDrivers[String(parts[4])], parts[5] == "bind" || parts[5] == "unbind"
        {
            let unbind = parts[5] == "unbind"
            return .text([]) { [unowned self] (s: String) throws(Errno) in
                guard let a = try? PCIAddress(parsing: s.trimmingCharacters(in: "\n")), let f = self.functions[a] else {
                    throw .operationNotSupportedByDevice
                }
                if unbind {
                    try DriverCore.unbind(driver.description, self.coreView(a))
                    try self.unbind(f)
                } else {
                    try DriverCore.bind(driver.description, self.coreView(a))
                    self.bind(f, to: driver)
                }
            }
        }
        if let (f, rest) = devicePath(path), rest == ["driver", "unbind"], let d = drivers[f.address], d != DriverBinding.none {
            // The device's `driver` link leads to its driver's directory.
            return .text([]) { [unowned self] (s: String) throws(Errno) in
                guard s.trimmingCharacters(in: "\n") == f.address.description else { throw .operationNotSupportedByDevice }
                try self.unbind(f)
            }
        }
        if parts.count == 5, parts[0] == "sys", parts[1] == "bus", parts[2] == "pci", parts[3] == "drivers",
            Self.boundDrivers[String(parts[4])] != nil
        {
            return .text([], write: nil)  // the driver's directory: it is loaded
        }
        if path == "/sys/bus/pci/drivers_probe" {
            return .text([]) { [unowned self] (s: String) throws(Errno) in
                guard let a = try? PCIAddress(parsing: s.trimmingCharacters(in: "\n")), let f = self.functions[a] else {
                    throw .operationNotSupportedByDevice
                }
                if let name = DriverCore.probe(self.coreView(a), drivers: Self.boundDrivers.keys.sorted()),
                    let driver = Self.boundDrivers[name]
                {
                    self.bind(f, to: driver)
                }
            }
        }
        if parts.count >= 4, parts[0] == "sys", parts[1] == "class", parts[2] == "uio", let u = uioByName(parts[3]) {
            switch parts.count {
            case 5 where parts[4] == "name": return text("uio_pci_generic")
            case 5 where parts[4] == "version": return text("0.01.0")
            case 5 where parts[4] == "event": return text(String(u.eventCount))
            case 7 where parts[4] == "maps":
                guard parts[5].hasPrefix("map"), let m = Int(parts[5].dropFirst(3)), m < u.maps.count else { break }
                let bar = u.maps[m]
                switch parts[6] {
                case "addr": return text(hex(u.function.barAddresses[bar.index] ?? 0, 16))
                case "size": return text(hex(UInt64((bar.size + 4095) & ~4095), 16))
                case "offset": return text("0x0")
                case "name": return text(u.function.address.description)
                default: break
                }
            default: break
            }
        }
        throw .noSuchFileOrDirectory
    }

    /// The function as the driver core's rules see it. vfio-pci and uio_pci_generic list no
    /// device in an ID table: they bind through `driver_override`. pci-stub stands for a host
    /// driver, so it lists every device, as with `pci-stub.ids=` naming them.
    private func coreView(_ a: PCIAddress) -> DriverCore.Device {
        let bound = drivers[a].flatMap { $0 == DriverBinding.none ? nil : $0.description }
        return DriverCore.Device(bound: bound, override: overrides[a], listedBy: { $0 == DriverBinding.pciStub.description })
    }

    /// Unbinding tears down the driver's state. vfio-pci asks the user to release an open
    /// device (REQ) and blocks until it does; the mock refuses with `EBUSY` instead of
    /// blocking.
    private func unbind(_ f: PCIFunction) throws(Errno) {
        let a = f.address
        if let d = vfioDevices[a] {
            if d.isOpen {
                d.removalRequests += 1
                if let fd = d.reqTrigger { signalEventFD(fd) }
                throw .resourceBusy
            }
            d.group.vfioDevices.removeAll { $0 === d }
            vfioDevices[a] = nil
        }
        if let u = uioDevices.removeValue(forKey: a) { u.removed = true }
        f.router = nil
        drivers[a] = DriverBinding.none
    }

    /// pread/pwrite of sysfs `config`: the physical config space, through the PCI core.
    func sysfsConfig(_ f: PCIFunction, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int, write: Bool) -> Int {
        let n = max(0, min(buffer.count, f.layout.size - offset))
        for (at, width) in VFIOPCIDevice.chunks(offset: offset, count: n, maxWidth: 4) {
            let i = at - offset
            if write {
                var v: UInt32 = 0
                for k in 0..<width { v |= UInt32(buffer[i + k]) << (8 * UInt32(k)) }
                f.write(config: at, width: width, value: v)
                pendingConfigNotifications.append((f.device, at, width, f.read(config: at, width: width)))
            } else {
                let v = f.read(config: at, width: width)
                for k in 0..<width { buffer[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
            }
        }
        lock.broadcast()
        return n
    }

    /// readlink(2) of the symlinks sysfs has for plugged functions: a device's directory, its
    /// `driver` (when bound) and `iommu_group`, an IOMMU group's members and a UIO device's
    /// `device`; `ENOENT` for anything else. Never touches the host.
    public func readLink(_ path: String) throws(Errno) -> String {
        try lock.withLock { () throws(Errno) -> String in
            let parts = path.split(separator: "/")
            if let (f, rest) = devicePath(path) {
                let a = f.address
                if rest.isEmpty { return "../../../devices/pci\(String(a.description.prefix(7)))/\(a)" }
                if rest == ["iommu_group"], let g = groupOfFunction[a] { return "../../../kernel/iommu_groups/\(g.id)" }
                if rest == ["driver"], let d = drivers[a], d != DriverBinding.none { return "../../../bus/pci/drivers/\(d)" }
            }
            if parts.count == 6, parts[0] == "sys", parts[1] == "kernel", parts[2] == "iommu_groups", parts[4] == "devices",
                let g = Int(parts[3]).flatMap({ groups[$0] }), let f = g.functions.first(where: { $0.address.description == parts[5] })
            {
                return "../../../../devices/pci\(String(f.address.description.prefix(7)))/\(f.address)"
            }
            if parts.count == 5, parts[0] == "sys", parts[1] == "class", parts[2] == "uio", parts[4] == "device",
                let u = uioByName(parts[3])
            {
                return "../../../\(u.function.address)"
            }
            throw .noSuchFileOrDirectory
        }
    }

    /// The names in a modelled `/sys` or `/dev/vfio` directory, as the kernel would list them for
    /// the plugged functions, without `.` and `..`; `ENOENT` for anything else. Never touches the host.
    public func listDirectory(_ path: String) throws(Errno) -> [String] {
        try lock.withLock { () throws(Errno) -> [String] in
            let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
            switch trimmed {
            case "/sys/bus/pci/devices": return functions.keys.sorted().map(\.description)
            case "/sys/kernel/iommu_groups": return groups.keys.sorted().map(String.init)
            case "/sys/class/uio": return uioDevices.values.map { "uio\($0.index)" }.sorted()
            case "/dev/vfio":
                var names = configuration.legacyContainerAvailable ? ["vfio"] : []
                names += groups.values.filter { !$0.vfioDevices.isEmpty }.map(\.nodeName).sorted()
                if configuration.iommufdAvailable && !vfioDevices.isEmpty { names.append("devices") }
                return names
            case "/dev/vfio/devices":
                guard configuration.iommufdAvailable else { throw .noSuchFileOrDirectory }
                return vfioDevices.values.map(cdevName).sorted()
            default: break
            }
            let parts = trimmed.split(separator: "/")
            if parts.count == 5, parts[0] == "sys", parts[1] == "kernel", parts[2] == "iommu_groups", parts[4] == "devices",
                let g = Int(parts[3]).flatMap({ groups[$0] })
            {
                return g.functions.map(\.address.description).sorted()
            }
            if let (f, rest) = devicePath(trimmed) {
                let a = f.address
                switch rest {
                case []:
                    var names = [
                        "vendor", "device", "class", "subsystem_vendor", "subsystem_device", "revision", "irq",
                        "resource", "config", "driver_override", "iommu_group",
                    ]
                    names += f.description.bars.map { "resource\($0.index)" }
                    if drivers[a] != DriverBinding.none { names.append("driver") }
                    if vfioDevices[a] != nil && configuration.iommufdAvailable { names.append("vfio-dev") }
                    if uioDevices[a] != nil { names.append("uio") }
                    return names.sorted()
                case ["vfio-dev"]:
                    guard let d = vfioDevices[a], configuration.iommufdAvailable else { break }
                    return [cdevName(d)]
                case ["uio"]:
                    guard let u = uioDevices[a] else { break }
                    return ["uio\(u.index)"]
                default: break
                }
            }
            if parts.count == 5, parts[0] == "sys", parts[1] == "class", parts[2] == "uio", parts[4] == "maps",
                let u = uioByName(parts[3])
            {
                return u.maps.indices.map { "map\($0)" }
            }
            throw .noSuchFileOrDirectory
        }
    }

    private func cdevName(_ d: VFIOPCIDevice) -> String { (configuration.noIOMMU ? "noiommu-vfio" : "vfio") + String(d.index) }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = self
        while s.last == set { s.removeLast() }
        return s
    }
}
