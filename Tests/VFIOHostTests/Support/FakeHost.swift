import Foundation
import PCI
@testable import VFIOHost

/// A whole fake host in a temporary directory, laid out as the kernel lays out sysfs and
/// procfs: `sys/bus/pci/devices/ADDR` links into `sys/devices/pci0000:00/…`, drivers under
/// `sys/bus/pci/drivers`, IOMMU groups under `sys/kernel/iommu_groups`, block and net class
/// links, `proc/self/mountinfo` and `proc/swaps`. Writes that bind drivers go through
/// ``FakeKernel``. The directory is removed when the host is released.
final class FakeHost {
    let root: String
    let kernel: FakeKernel
    let stateDirectory: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-host-\(UUID().uuidString)")
        root = base.path
        stateDirectory = root + "/run/vfiokit"
        kernel = FakeKernel(root: root)
        for dir in [
            "sys/bus/pci/devices", "sys/bus/pci/drivers", "sys/devices/pci0000:00", "sys/kernel/iommu_groups",
            "sys/class/block", "sys/class/net", "proc/self", "dev",
        ] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true)
        }
        write("sys/bus/pci/drivers_probe", "")
        write("proc/self/mountinfo", "22 27 0:21 / /proc rw,relatime - proc proc rw\n")
        write("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// The NVMe controller of ``sharingAGroup()``.
    static let nvme = try! PCIAddress(parsing: "0000:03:00.0")
    /// The HDA function of ``sharingAGroup()``.
    static let audio = try! PCIAddress(parsing: "0000:03:00.1")

    /// An NVMe controller (``nvme``) and an HDA function (``audio``) sharing IOMMU group 12
    /// below a PCIe port in group 7, each on its host driver. Loaded besides: vfio-pci and
    /// uio_pci_generic, which match nothing by ID (only through driver_override), and pci-stub.
    /// pcieport matches class 0x0604, nvme 0x010802, snd_hda_intel 0x0403.
    static func sharingAGroup() throws -> FakeHost {
        let host = try FakeHost()
        for driver in ["vfio-pci", "uio_pci_generic", "pci-stub"] { host.addDriver(driver) }
        host.addDriver("pcieport") { _, _, cls in cls >> 8 == 0x0604 }
        host.addDriver("nvme") { _, _, cls in cls == 0x010802 }
        host.addDriver("snd_hda_intel") { _, _, cls in cls >> 8 == 0x0403 }
        host.addDevice("0000:00:1c.0", classCode: 0x060400, group: 7, driver: "pcieport")
        host.addDevice("\(nvme)", classCode: 0x010802, parent: "0000:00:1c.0", group: 12, driver: "nvme")
        host.addDevice("\(audio)", classCode: 0x040300, parent: "0000:00:1c.0", group: 12, driver: "snd_hda_intel")
        return host
    }

    var tree: HostTree { HostTree(root: root, system: kernel) }
    var discovery: PCIDiscovery { PCIDiscovery(tree: tree) }
    var store: BindingStateStore { BindingStateStore(directory: stateDirectory) }

    func binding(memlock: MemlockLimit = .unlimited) -> HostBinding {
        HostBinding(discovery: discovery, store: store, memlock: memlock)
    }

    // MARK: Building the tree

    /// A loaded driver with its `bind`/`unbind` files and ID table.
    func addDriver(_ name: String, matches: @escaping FakeKernel.Matcher = { _, _, _ in false }) {
        mkdir("sys/bus/pci/drivers/\(name)")
        write("sys/bus/pci/drivers/\(name)/bind", "")
        write("sys/bus/pci/drivers/\(name)/unbind", "")
        kernel.register(driver: name, matches: matches)
    }

    /// A PCI function below the root complex, or below the bridge at `parent`.
    @discardableResult
    func addDevice(
        _ address: String, vendor: UInt16 = 0x8086, device: UInt16 = 0x1234, classCode: UInt32 = 0x020000,
        parent: String? = nil, group: Int? = nil, numa: Int = -1, driver: String? = nil,
        resource: String = FakeHost.endpointResources, subsystem: (UInt16, UInt16)? = nil, revision: UInt8 = 1
    ) -> String {
        let dir = devicePath(address, parent: parent)
        mkdir(dir)
        write("\(dir)/vendor", hex(vendor, 4))
        write("\(dir)/device", hex(device, 4))
        write("\(dir)/subsystem_vendor", hex(subsystem?.0 ?? vendor, 4))
        write("\(dir)/subsystem_device", hex(subsystem?.1 ?? device, 4))
        write("\(dir)/class", hex(classCode, 6))
        write("\(dir)/revision", hex(revision, 2))
        write("\(dir)/numa_node", "\(numa)")
        write("\(dir)/driver_override", "(null)")
        write("\(dir)/resource", resource)
        var config = [UInt8](repeating: 0, count: 256)
        config[0] = UInt8(vendor & 0xff); config[1] = UInt8(vendor >> 8)
        config[2] = UInt8(device & 0xff); config[3] = UInt8(device >> 8)
        config[8] = revision
        config[9] = UInt8(classCode & 0xff); config[10] = UInt8(classCode >> 8 & 0xff); config[11] = UInt8(classCode >> 16)
        _ = FileManager.default.createFile(atPath: "\(root)/\(dir)/config", contents: Data(config))
        Self.link("\(root)/sys/bus/pci/devices/\(address)", to: dir, from: "sys/bus/pci/devices")
        if let group {
            mkdir("sys/kernel/iommu_groups/\(group)/devices")
            Self.link("\(root)/\(dir)/iommu_group", to: "sys/kernel/iommu_groups/\(group)", from: dir)
            Self.link(
                "\(root)/sys/kernel/iommu_groups/\(group)/devices/\(address)", to: dir,
                from: "sys/kernel/iommu_groups/\(group)/devices")
        }
        if let driver {
            Self.link("\(root)/\(dir)/driver", to: "sys/bus/pci/drivers/\(driver)", from: dir)
            Self.link("\(root)/sys/bus/pci/drivers/\(driver)/\(address)", to: dir, from: "sys/bus/pci/drivers/\(driver)")
        }
        return dir
    }

    /// A block device at `path` below a PCI device (`virtio1/block/vda`, or a partition
    /// `virtio1/block/vda/vda1`), with its `sys/class/block` link.
    func addBlock(under address: String, path: String, number: String, parent: String? = nil) {
        let dir = devicePath(address, parent: parent) + "/" + path
        addBlock(at: dir, number: number)
    }

    /// A virtual block device (`dm-0`) stacked on `lower` block devices through `holders/`.
    func addStackedBlock(_ name: String, number: String, on lower: [String]) {
        let dir = "sys/devices/virtual/block/\(name)"
        addBlock(at: dir, number: number)
        for device in lower {
            let lowerDir = classTarget("sys/class/block/\(device)")
            mkdir("\(lowerDir)/holders")
            Self.link("\(root)/\(lowerDir)/holders/\(name)", to: dir, from: "\(lowerDir)/holders")
        }
    }

    /// A network interface below a PCI device, with its `sys/class/net` link.
    func addInterface(under address: String, path: String, operstate: String, flags: String, parent: String? = nil) {
        let dir = devicePath(address, parent: parent) + "/" + path
        mkdir(dir)
        write("\(dir)/operstate", operstate)
        write("\(dir)/flags", flags)
        let name = String(path.split(separator: "/").last!)
        Self.link("\(root)/sys/class/net/\(name)", to: dir, from: "sys/class/net")
    }

    func mount(_ number: String, at mountPoint: String) {
        let escaped = mountPoint.replacingOccurrences(of: " ", with: "\\040")
        append("proc/self/mountinfo", "40 27 \(number) / \(escaped) rw,relatime - ext4 /dev/x rw\n")
    }

    func swap(on device: String) {
        append("proc/swaps", "/dev/\(device)                               partition\t1048572\t\t0\t\t-2\n")
    }

    func enableNoIOMMUMode() {
        mkdir("sys/module/vfio/parameters")
        write("sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "Y")
    }

    // MARK: Reading back

    func driver(of address: String) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/sys/bus/pci/devices/\(address)/driver"))
            .map { URL(fileURLWithPath: $0).lastPathComponent }
    }

    func read(_ path: String) -> String {
        ((try? String(contentsOfFile: "\(root)/\(path)", encoding: .utf8)) ?? "").trimmingCharacters(in: .newlines)
    }

    /// Six BARs and a ROM line, as an endpoint's `resource` shows them: a 64-bit prefetchable
    /// 16 KiB BAR 0 (its upper half in line 1), an I/O BAR 2, nothing else.
    static let endpointResources = """
        0x00000000fe000000 0x00000000fe003fff 0x000000000014220c
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x000000000000e000 0x000000000000e01f 0x0000000000040101
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000000000000000 0x0000000000000000 0x0000000000000000

        """

    // MARK: Helpers

    /// Makes a relative symlink at absolute `link` to root-relative `target`, written as the
    /// kernel writes it: climbing from `linkDirectory` (root-relative) up to the root.
    static func link(_ link: String, to target: String, from linkDirectory: String) {
        let ups = String(repeating: "../", count: linkDirectory.split(separator: "/").count)
        try? FileManager.default.removeItem(atPath: link)
        try! FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: ups + target)
    }

    private func devicePath(_ address: String, parent: String?) -> String {
        parent.map { "sys/devices/pci0000:00/\($0)/\(address)" } ?? "sys/devices/pci0000:00/\(address)"
    }

    private func addBlock(at dir: String, number: String) {
        mkdir(dir)
        write("\(dir)/dev", number)
        let name = String(dir.split(separator: "/").last!)
        Self.link("\(root)/sys/class/block/\(name)", to: dir, from: "sys/class/block")
    }

    private func classTarget(_ link: String) -> String {
        let resolved = URL(fileURLWithPath: "\(root)/\(link)").resolvingSymlinksInPath().path
        let realRoot = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        return String(resolved.dropFirst(realRoot.count + 1))
    }

    func mkdir(_ path: String) {
        try! FileManager.default.createDirectory(atPath: "\(root)/\(path)", withIntermediateDirectories: true)
    }

    func write(_ path: String, _ text: String) {
        _ = FileManager.default.createFile(
            atPath: "\(root)/\(path)", contents: Data((text.hasSuffix("\n") || text.isEmpty ? text : text + "\n").utf8))
    }

    private func append(_ path: String, _ text: String) { write(path, read(path) + "\n" + text) }

    private func hex<T: BinaryInteger>(_ value: T, _ width: Int) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
