import ArgumentParser
import Foundation
import Logging
import PCI
import VFIODrivers
import VFIOKit
import VFIOMock

/// The devices `vfiokit run` hosts when it is given none: simulated IMS multi-queue devices on
/// the mock kernel, whose driver submits work to every queue in a loop, so that IMS interrupts
/// and completions flow; or, with `--driver nvme-verify`, simulated NVMe controllers (a 1 MiB
/// namespace in memory) that the verify workload writes and reads back.
enum SimulatedDaemonDevice {
    static let name = IMSQueueDriver.name

    /// `count` addresses from 0000:00:04.0 on, one device each.
    static func addresses(count: Int) -> [PCIAddress] {
        (0..<count).map { try! PCIAddress(domain: 0, bus: 0, device: UInt8(4 + $0), function: 0) }
    }

    /// A mock kernel with a device plugged at each address, each in an IOMMU group of its own,
    /// on `pci-stub` when the daemon is to bind them itself (so that each has an original driver
    /// to give back), else already on its userspace driver.
    static func machine(_ addresses: [PCIAddress], backend: Backend, bind: Bool, driverName: String? = nil) throws -> MockKernel {
        var configuration = MockKernel.Configuration()
        configuration.noIOMMU = backend == .noIOMMU
        let kernel = MockKernel(configuration: configuration)
        let driver: DriverBinding = bind ? .pciStub : (backend == .uio ? .uioPCIGeneric : .vfioPCI)
        if driverName == NVMeVerifyDriver.name {
            for address in addresses {
                try kernel.plug(NVMeController(namespaces: [NVMeNamespace(blockCount: 2048)]), at: address, driver: driver)
            }
            return kernel
        }
        let devices = addresses.map { _ in IMSQueueDevice() }
        for (address, device) in zip(addresses, devices) { try kernel.plug(device, at: address, driver: driver) }
        try SimulatedFault.fromEnvironment()?.schedule(on: devices)
        return kernel
    }

    /// Logs what the mock kernel holds after shutdown, a record per device at notice: proof
    /// that nothing was left behind.
    static func logAftermath(_ kernel: MockKernel, _ addresses: [PCIAddress], logger: Logger) {
        for address in addresses {
            let state = kernel.interruptState(of: address)
            let driver = try? kernel.readLink(SysfsLayout.absolute(SysfsLayout.device(address, .driver)))
            let irqs = state.map { $0.kind == .none && !$0.reqArmed ? "none enabled" : "\($0.kind) still enabled" } ?? "none enabled"
            let driverName = driver.map { String($0.split(separator: "/").last ?? "") } ?? "none"
            logger.notice(
                "simulated kernel after shutdown: \(kernel.dmaMappings(of: address).count) DMA mappings, interrupts \(irqs), \(kernel.openFileCount) open files, driver \(driverName), device \(address)"
            )
        }
    }
}

/// A fault the simulated devices take some seconds after start, named by
/// `VFIOKIT_SIMULATED_FAULT=KIND@SECONDS`, so that a soak can show each of its checks failing:
/// `stall-queue` (queue 0 of every device stops completing), `drop-completion` (queue 0 loses
/// one completion), `leak-files` (the process opens a file every 100 ms and never closes it).
/// Only the simulated devices of `vfiokit run` read it.
struct SimulatedFault {
    static let variable = "VFIOKIT_SIMULATED_FAULT"

    enum Kind: String, CaseIterable { case stallQueue = "stall-queue", dropCompletion = "drop-completion", leakFiles = "leak-files" }

    let kind: Kind
    let seconds: Double

    /// The fault the environment names, nil when none; a value that names none is refused.
    static func fromEnvironment() throws -> SimulatedFault? {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else { return nil }
        let parts = value.split(separator: "@", maxSplits: 1)
        guard let kind = Kind(rawValue: String(parts[0])), let seconds = parts.count == 2 ? Double(parts[1]) : 0, seconds >= 0 else {
            throw ValidationError(
                "\(variable)=\(value): use KIND@SECONDS with KIND one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return SimulatedFault(kind: kind, seconds: seconds)
    }

    func schedule(on devices: [IMSQueueDevice]) {
        let kind = self.kind
        Thread {
            Thread.sleep(forTimeInterval: seconds)
            switch kind {
            case .stallQueue: for d in devices { d.stall(queue: 0) }
            case .dropCompletion: for d in devices { d.dropNextCompletion(queue: 0) }
            case .leakFiles:
                while true {
                    _ = open("/dev/null", O_RDONLY)
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
        }.start()
    }
}
