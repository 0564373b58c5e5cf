import CVFIO
import SystemPackage

/// VFIO_DEVICE_FEATURE: which features vfio-pci reports for a device (PROBE of each index),
/// the flag checks every feature shares, and the low-power features' SET protocol.
extension Conformance {
    static let featureScenarios: [Scenario] = [
        Scenario("device-feature", origin: "VFIO_DEVICE_FEATURE (vfio_ioctl_device_feature, vfio_pci_core_ioctl_feature)") {
            s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let get = UInt32(VFIO_DEVICE_FEATURE_GET), set = UInt32(VFIO_DEVICE_FEATURE_SET), probe = UInt32(VFIO_DEVICE_FEATURE_PROBE)
            func feature(_ name: String, flags: UInt32, argsz: UInt32 = 8, data: Int32? = nil) {
                let arg = IoctlArgument(size: 16)
                arg[u32: 0] = argsz
                arg[u32: 4] = flags
                if let data { arg[i32: 8] = data }
                s.ioctl(name, dev.fd, CVFIO_DEVICE_FEATURE, arg)
            }
            // Every index through the newest this project knows of, and one beyond.
            for index: UInt32 in 0...11 {
                feature("PROBE \(index)", flags: probe | index)
                feature("PROBE|SET \(index)", flags: probe | set | index)
                feature("PROBE|GET \(index)", flags: probe | get | index)
            }
            let entry = UInt32(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), wakeup = UInt32(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP)
            let exit = UInt32(VFIO_DEVICE_FEATURE_LOW_POWER_EXIT)
            feature("argsz 7", flags: probe | entry, argsz: 7)
            feature("unknown flag bit 19", flags: probe | entry | 1 << 19)
            feature("GET|SET", flags: get | set | entry)
            feature("no operation", flags: entry)
            feature("GET entry", flags: get | entry)
            feature("SET wakeup argsz 12", flags: set | wakeup, argsz: 12)
            feature("SET wakeup eventfd -1", flags: set | wakeup, argsz: 16, data: -1)
            feature("SET exit", flags: set | exit)
            feature("SET entry", flags: set | entry)
            feature("SET entry again", flags: set | entry)
            feature("SET exit", flags: set | exit)
            feature("SET exit again", flags: set | exit)
        }
    ]
}
