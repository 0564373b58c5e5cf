import CVFIO
import PCI
import SystemPackage
import Testing
@testable import VFIOMock

/// vfio-pci offers a reset (`VFIO_DEVICE_FLAGS_RESET`, `VFIO_DEVICE_RESET`) exactly when the
/// PCI core finds a reset method for the function: FLR from the PCIe or Advanced Features
/// capability, a PM reset when No_Soft_Reset is clear, or a bus reset for a function alone
/// on a non-root bus. Otherwise `VFIO_DEVICE_RESET` fails with `EINVAL`.
@Suite struct ResetMethodTests {
    static let rootBus = address("0000:00:03.0"), childBus = address("0000:01:00.0")

    /// A conventional (non-PCIe) function with the given reset capabilities.
    static func device(flr: Bool = false, pm: PowerManagementDescription? = nil, pcie: Bool = false) -> MemoryBARDevice {
        var o = MemoryBARDevice.Options()
        o.isPCIExpress = pcie
        o.supportsReset = flr
        o.powerManagement = pm
        return MemoryBARDevice(options: o)
    }

    static func resetFlag(_ s: LegacySetup) throws -> Bool {
        var info = vfio_device_info()
        info.argsz = UInt32(MemoryLayout<vfio_device_info>.size)
        try ioctl(s.kernel, s.device, CVFIO_DEVICE_GET_INFO, &info)
        return info.flags & UInt32(VFIO_DEVICE_FLAGS_RESET) != 0
    }

    static func resetAnswer(_ s: LegacySetup) -> Errno? {
        errno { try s.kernel.ioctl(s.device, UInt(CVFIO_DEVICE_RESET), 0) }
    }

    @Test(arguments: [
        ("no method, root bus", device(), rootBus, false),
        ("no method, alone on a child bus (bus reset)", device(), childBus, true),
        ("PCIe FLR", device(flr: true, pcie: true), rootBus, true),
        ("PCIe without FLR", device(pcie: true), rootBus, false),
        ("Advanced Features FLR", device(flr: true), rootBus, true),
        ("PM, No_Soft_Reset clear", device(pm: PowerManagementDescription(noSoftReset: false)), rootBus, true),
        ("PM, No_Soft_Reset set", device(pm: PowerManagementDescription(noSoftReset: true)), rootBus, false),
    ])
    func resetFollowsTheMethodsThePCICoreFinds(_ name: String, _ device: MemoryBARDevice, _ at: PCIAddress, _ works: Bool) throws {
        let s = try LegacySetup(device, at: at)
        #expect(try Self.resetFlag(s) == works, "\(name)")
        #expect(Self.resetAnswer(s) == (works ? nil : .invalidArgument), "\(name)")
    }

    /// A second function on the same child bus takes the bus reset away.
    @Test func aSiblingOnTheBusTakesTheBusResetAway() throws {
        let s = try LegacySetup(Self.device(), at: Self.childBus)
        try s.kernel.plug(Self.device(), at: address("0000:01:01.0"), driver: .kernel("e1000"))
        // The methods are probed when the device is enabled (its first open): reopen it.
        try s.kernel.close(s.device)
        let k = s.kernel, g = s.group
        let device = FileDescriptor(
            rawValue: try Self.childBus.description.withCString { p in
                try k.ioctl(g, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: p))
            })
        #expect(errno { try k.ioctl(device, UInt(CVFIO_DEVICE_RESET), 0) } == .invalidArgument)
    }

    /// The capabilities sit in config space as the PCI core reads them: PM (ID 1) with
    /// PMCSR's No_Soft_Reset, AF (ID 0x13) with TP and FLR; writing AF's FLR bit resets.
    @Test func theCapabilitiesAreInConfigSpaceAndAFFLRResets() throws {
        let d = Self.device(flr: true, pm: PowerManagementDescription(noSoftReset: true))
        let s = try LegacySetup(d, at: Self.rootBus)
        let config = VFIO_PCI_CONFIG_REGION_INDEX
        var at = Int(try s.pread(config, offset: 0x34, width: 1))
        var found: [UInt64: Int] = [:]
        while at != 0 {
            found[try s.pread(config, offset: at, width: 1)] = at
            at = Int(try s.pread(config, offset: at + 1, width: 1))
        }
        let pm = try #require(found[0x01]), af = try #require(found[0x13])
        #expect(try s.pread(config, offset: pm + 4, width: 2) & 0x8 != 0)
        #expect(try s.pread(config, offset: af + 3, width: 1) == 0x3)
        let before = d.resetCount
        try s.pwrite(config, offset: af + 4, width: 1, value: 1)
        s.kernel.runPendingResets()
        #expect(d.resetCount == before + 1)
        #expect(try s.pread(config, offset: af + 4, width: 1) == 0, "the FLR bit does not stick")
    }
}
