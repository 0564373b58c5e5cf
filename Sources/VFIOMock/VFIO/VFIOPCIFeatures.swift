import CVFIO
import SystemPackage

/// `VFIO_DEVICE_FEATURE` as `vfio_ioctl_device_feature` and vfio-pci's
/// `vfio_pci_core_ioctl_feature` answer it for a plain vfio-pci device: no migration or
/// dirty-page logging driver (`ENOTTY`), no SR-IOV VF token (the device is not a PF: `ENOTTY`),
/// and, where the profile has them, the low-power features, which take SET (and PROBE) only.
///
/// Low power as on a machine whose PCI devices keep runtime PM forbidden (`power/control` is
/// `on`, the PCI core's default): entering only engages it (a second entry is `EINVAL`), the
/// device never suspends, so a wakeup eventfd is held but never signalled, and exiting (or the
/// last close) disengages it. While engaged, mapped BAR accesses fault (SIGBUS), as
/// `vfio_pci_mmap_fault` refuses them.
extension VFIOPCIDevice {
    func deviceFeature(_ arg: UserPointer) throws(Errno) {
        let argsz: UInt32 = arg.load(0), flags: UInt32 = arg.load(4)
        let get = UInt32(VFIO_DEVICE_FEATURE_GET), set = UInt32(VFIO_DEVICE_FEATURE_SET), probe = UInt32(VFIO_DEVICE_FEATURE_PROBE)
        guard argsz >= 8 else { throw .invalidArgument }
        guard flags & ~(UInt32(VFIO_DEVICE_FEATURE_MASK) | get | set | probe) == 0 else { throw .invalidArgument }
        if flags & probe == 0 && flags & set != 0 && flags & get != 0 { throw .invalidArgument }
        let feature = Int32(flags & UInt32(VFIO_DEVICE_FEATURE_MASK))
        let lowPower = [
            VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
        ]
        guard configuration.profile.lowPowerFeatures, lowPower.contains(feature) else { throw .inappropriateIOCTLForDevice }
        // vfio_check_feature(flags, argsz, SET, minsz): 1 means "do it".
        let minsz: UInt32 = feature == VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP ? 8 : 0
        guard flags & get == 0 else { throw .invalidArgument }
        if flags & probe != 0 { return }
        guard flags & set != 0, argsz - 8 >= minsz else { throw .invalidArgument }
        switch feature {
        case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
            try enterLowPower(wakeup: nil)
        case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP:
            let fd: Int32 = arg.load(8)
            guard fd >= 0 else { throw .invalidArgument }
            let reference = try eventFDReference(fd)
            do { try enterLowPower(wakeup: reference) } catch {
                _ = closeHostFD(reference)
                throw error
            }
        default:
            exitLowPower()
        }
    }

    private func enterLowPower(wakeup: Int32?) throws(Errno) {
        guard !lowPowerEngaged else { throw .invalidArgument }
        lowPowerEngaged = true
        wakeupTrigger = wakeup
    }

    /// `vfio_pci_runtime_pm_exit`: disengages low power and drops the wakeup eventfd.
    func exitLowPower() {
        lowPowerEngaged = false
        closeTrigger(&wakeupTrigger)
    }
}
