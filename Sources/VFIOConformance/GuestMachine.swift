import PCI
import VFIOKit
import VFIOMock

/// The kernels of `Tests/VM`, each played by the mock's ``MockKernel/Profile`` of its release
/// on a machine configured like the guest.
public enum GuestKernel: String, CaseIterable, Sendable {
    /// The custom 6.12 kernel of the `iommu` configuration: legacy container and iommufd.
    case linux6_12 = "6.12"
    /// Debian's 6.1 kernel of the `distro` configuration: no iommufd.
    case linux6_1 = "6.1"

    /// The kernel a `uname -r` release string names (`6.1.0-28-amd64`, `6.12.48`): the newest
    /// profile not newer than it.
    public init?(release: String) {
        guard let p = MockKernel.Profile(release: release), let k = Self(rawValue: p.release) else { return nil }
        self = k
    }

    /// The ABI this kernel answers with.
    public var profile: MockKernel.Profile {
        switch self {
        case .linux6_12: .linux6_12
        case .linux6_1: .linux6_1
        }
    }

    /// The mock configuration of this kernel on the guest machine: QEMU 7.2's intel-iommu
    /// translates 39-bit IOVAs (`aw-bits` 39) and reserves the MSI window; SeaBIOS leaves
    /// I/O, memory and SERR# enabled in each function's command register, places 32-bit BARs
    /// from 0xfe600000 in device order and routes the pins to interrupt line 11.
    public var configuration: MockKernel.Configuration {
        var c = MockKernel.Configuration()
        c.profile = profile
        c.firmwareCommand = 0x103
        c.firmwareBARBase32 = 0xfe60_0000
        c.firmwareInterruptLine = 11
        c.iovaRanges = [IOVARange(first: 0, last: 0xfedf_ffff), IOVARange(first: 0xfef0_0000, last: (1 << 39) - 1)]
        return c
    }
}

extension MockKernel {
    /// A mock holding the devices of `target` as the `Tests/VM` guest has them, bound to
    /// vfio-pci: QEMU's edu, QEMU's NVMe controller (65 MSI-X vectors in BAR0) for the MSI-X
    /// device, and for the non-viable function an edu sharing its group with an e1000 that
    /// the e1000 driver holds (the guest's bridge pair).
    public static func conformanceGuest(_ target: ConformanceTarget, kernel: GuestKernel) throws -> MockKernel {
        try conformanceGuest(target, configuration: kernel.configuration)
    }

    /// The guest's devices on a mock configured as `configuration` says (a profile under test).
    public static func conformanceGuest(_ target: ConformanceTarget, configuration: Configuration) throws -> MockKernel {
        let mock = MockKernel(configuration: configuration)
        // QEMU's edu has neither FLR nor PM reset, so vfio-pci offers no reset.
        var edu = EduDevice.Options()
        edu.supportsReset = false
        try mock.plug(EduDevice(options: edu), at: target.edu)
        if let msix = target.msix {
            var nvme = MemoryBARDevice.Options()
            nvme.vendorID = 0x1b36
            nvme.deviceID = 0x0010
            nvme.classCode = 0x010802
            nvme.barSize = 16 * 1024
            nvme.is64Bit = true
            nvme.msixVectors = 65
            try mock.plug(MemoryBARDevice(options: nvme), at: msix)
        }
        if let shared = target.nonViable {
            let group = 1000
            try mock.plug(EduDevice(options: edu), at: shared, iommuGroup: group)
            var nic = MemoryBARDevice.Options()
            nic.vendorID = 0x8086
            nic.deviceID = 0x100e
            let sibling = try PCIAddress(domain: shared.domain, bus: shared.bus, device: shared.device &+ 1, function: 0)
            try mock.plug(MemoryBARDevice(options: nic), at: sibling, iommuGroup: group, driver: .kernel("e1000"))
        }
        return mock
    }
}
