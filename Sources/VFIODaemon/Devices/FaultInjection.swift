#if canImport(Glibc)
import Glibc
#endif
import PCI
import VFIOKit

/// The fault-injection seam: `VFIOKIT_FAULT_TRAP=ADDRESS[,ADDRESS...]` makes the daemon trap
/// (a Swift precondition failure: SIGILL on x86-64, SIGTRAP on arm64) on the work path of each
/// named device as soon as its driver has counted an interrupt, standing in for a driver whose
/// interrupt handling hits a precondition. It exists so that what a trap takes down can be
/// tested; no driver is ever made to trap itself. It fires only for drivers the daemon
/// exercises (edu, msix-loopback, ims-queue).
enum FaultInjection {
    static let variable = "VFIOKIT_FAULT_TRAP"

    /// True when the environment names `address`.
    static func trapsOnInterrupt(_ address: PCIAddress) -> Bool {
        guard let value = getenv(variable) else { return false }
        return String(cString: value).split(separator: ",").contains { (try? PCIAddress(parsing: String($0))) == address }
    }

    /// Traps when `activity` has counted an interrupt.
    static func trapIfInterrupted(_ activity: DriverActivity, address: PCIAddress, driver: String) {
        guard activity.interrupts.contains(where: { $0.count > 0 }) else { return }
        preconditionFailure("\(variable)=\(address): driver \(driver) traps on its device's first interrupt (fault injection)")
    }
}
