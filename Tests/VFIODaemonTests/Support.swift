import Dispatch
import FoundationEssentials
import Logging
import PCI
import VFIODaemon
import VFIODrivers
import VFIOKit
import VFIOMock
#if canImport(Glibc)
import Glibc
#endif

func pciAddress(_ text: String) -> PCIAddress { try! PCIAddress(parsing: text) }

let first = pciAddress("0000:00:04.0")
let second = pciAddress("0000:00:05.0")

/// A mock kernel with edu devices, and a fresh state directory for a daemon on it.
struct DaemonMachine {
    let kernel = MockKernel()
    let stateDirectory: String

    init(edu addresses: [PCIAddress], driver: DriverBinding = .vfioPCI) throws {
        for address in addresses { try kernel.plug(EduDevice(), at: address, driver: driver) }
        stateDirectory =
            FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-daemon-\(UInt64.random(in: 0 ... .max))").path
    }

    func host(
        _ devices: [DaemonConfiguration.Device], bind: Bool = false, drivers: [any PCIDriver.Type] = DriverRegistry.all
    ) throws -> DriverHost {
        let configuration = DaemonConfiguration(
            devices: devices, bind: bind, stateDirectory: stateDirectory, workInterval: .milliseconds(1))
        return try DriverHost(
            configuration: configuration, system: kernel, simulated: true, drivers: drivers,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// The driver the mock kernel has bound to `address`, by name.
    func driver(of address: PCIAddress) -> String {
        (try? kernel.readLink("/sys/bus/pci/devices/\(address)/driver")).map { String($0.split(separator: "/").last ?? "") } ?? "none"
    }

    func removeStateDirectory() { try? FileManager.default.removeItem(atPath: stateDirectory) }
}

extension DriverHost {
    func device(_ address: PCIAddress) -> DeviceStatus? { status().devices.first { $0.address == address.description } }
}

/// Polls `condition` every 10 ms for up to `seconds`; returns whether it became true.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = DispatchTime.now() + .milliseconds(Int(seconds * 1000))
    while DispatchTime.now() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// A driver that probes edu devices and refuses to start, for the isolation tests.
final class RefusingDriver: PCIDriver {
    static let name = "refusing"
    static let matches: [PCIMatch] = []
    struct Refusal: Error, CustomStringConvertible { var description: String { "the refusing test driver will not start" } }

    private let device: PCIDevice
    init(device: PCIDevice, loop: EventLoop) throws { self.device = device }

    /// Enables MSI before refusing, as a driver failing half-way would leave it.
    func start() throws {
        _ = try device.interrupts.enable(.msi)
        throw Refusal()
    }

    func stop() {}
}
