#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import Testing
@testable import VFIOMock

/// VFIO_DEVICE_FEATURE as vfio-pci answers it for a device without migration, logging or a VF
/// token: the low-power features only, SET and PROBE only, and the flag checks before them.
@Suite struct DeviceFeatureTests {
    private func feature(_ s: LegacySetup, flags: Int32, argsz: UInt32 = 8, data: Int32 = 0) -> Errno? {
        var arg: (UInt32, UInt32, Int32, UInt32) = (argsz, UInt32(bitPattern: flags), data, 0)
        return errno { try ioctl(s.kernel, s.device, CVFIO_DEVICE_FEATURE, &arg) }
    }

    @Test func probeFindsTheLowPowerFeaturesOnly() throws {
        let s = try LegacySetup(EduDevice())
        let probe = VFIO_DEVICE_FEATURE_PROBE, set = VFIO_DEVICE_FEATURE_SET, get = VFIO_DEVICE_FEATURE_GET
        for index: Int32 in 0...11 {
            let lowPower = (3...5).contains(index)
            #expect(feature(s, flags: probe | index) == (lowPower ? nil : .inappropriateIOCTLForDevice), "feature \(index)")
            #expect(feature(s, flags: probe | set | index) == (lowPower ? nil : .inappropriateIOCTLForDevice), "feature \(index)")
            #expect(
                feature(s, flags: probe | get | index) == (lowPower ? .invalidArgument : .inappropriateIOCTLForDevice), "feature \(index)")
        }
        // The checks every feature shares come first, even for one that does not exist.
        #expect(feature(s, flags: probe | 3, argsz: 7) == .invalidArgument)
        #expect(feature(s, flags: probe | 9 | 1 << 19) == .invalidArgument)
        #expect(feature(s, flags: get | set | 9) == .invalidArgument)
        #expect(feature(s, flags: 3) == .invalidArgument)
    }

    /// Entry engages low power once; while engaged a mapped access faults (here: a guarded
    /// mapping is revoked) and the model sees nothing; exit disengages it.
    @Test func lowPowerEntryEngagesOnceAndRefusesMappedAccess() throws {
        let s = try LegacySetup(EduDevice())
        let set = VFIO_DEVICE_FEATURE_SET
        #expect(feature(s, flags: set | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, argsz: 12) == .invalidArgument)
        #expect(feature(s, flags: set | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, argsz: 16, data: -1) == .invalidArgument)
        #expect(feature(s, flags: set | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT) == nil)
        #expect(feature(s, flags: set | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY) == nil)
        #expect(feature(s, flags: set | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY) == .invalidArgument)
        guard TrappedMapping.supported else { return }
        let p = try s.kernel.mmap(length: 4096, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: s.device, offset: 0)
        let guardNumber = cvfio_guard_mapping(p, 4096)
        try #require(guardNumber >= 0)
        defer {
            cvfio_unguard_mapping(guardNumber)
            try? s.kernel.munmap(p, length: 4096)
        }
        #expect(cvfio_read32(p) == 0xffff_ffff && cvfio_guard_tripped(guardNumber) == 1)
        #expect(feature(s, flags: set | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT) == nil)
        #expect(try s.pread(0, offset: 0, width: 4) == 0x0100_00ed)
    }

    @Test func aProfileWithoutLowPowerAnswersENOTTY() throws {
        var profile = MockKernel.Profile.linux6_12
        profile.lowPowerFeatures = false
        var configuration = MockKernel.Configuration()
        configuration.profile = profile
        let s = try LegacySetup(EduDevice(), configuration: configuration)
        #expect(feature(s, flags: VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY) == .inappropriateIOCTLForDevice)
    }
}
