import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Logging
import PCI
import VFIODrivers
import VFIOKit
import VFIOMock

/// Where `vfiokit nvme` goes: a real controller, or a simulated one backed by an image or memory.
struct NVMeTarget: ParsableArguments {
    @Argument(help: "The controller's PCI address, e.g. 0000:00:05.0; with --simulated, an optional image file.")
    var address: String?

    @Flag(
        help: "Use a simulated NVMe controller (mock VFIO kernel model), backed by the image file given in place of ADDRESS, or by memory.")
    var simulated = false

    @Option(
        help: ArgumentHelp(
            "With --simulated IMAGE: create the image this size (bytes, or with K, M, G) if it does not exist or is empty.",
            valueName: "size"))
    var create: String?

    @Option(help: "auto, iommufd, legacy or noiommu (VFIOKIT_BACKEND overrides auto).")
    var backend: String = "auto"

    @OptionGroup var logging: LoggingOptions

    /// How output names the device: its address, or `simulated`.
    var deviceName: String { simulated ? "simulated" : address ?? "?" }

    /// Opens the device and brings the driver up; the session closes everything.
    func open(_ configuration: NVMeDriver.Configuration, controllerThread: Bool = false) throws -> NVMeSession {
        guard let chosen = Backend(rawValue: backend), chosen != .uio else {
            throw ValidationError(
                "unknown or unusable backend \"\(backend)\": NVMe needs MSI-X or polling with DMA; use auto, iommufd, legacy or noiommu")
        }
        if simulated {
            var options = NVMeController.Options()
            options.processing = controllerThread ? .thread : .synchronous
            let namespace: NVMeNamespace
            if let image = address {
                let size = try create.map(Self.parseSize)
                if size == nil && access(image, F_OK) != 0 && errno == ENOENT {
                    throw ValidationError("the NVMe image \(image) does not exist: give --create SIZE (such as --create 64M) to make it")
                }
                do { namespace = try NVMeNamespace(imageAt: image, createSize: size) } catch { throw ValidationError(error.description) }
            } else {
                guard create == nil else { throw ValidationError("--create makes an image file: give its path after --simulated") }
                namespace = NVMeNamespace(blockCount: 64 << 11)
            }
            let controller = NVMeController(namespaces: [namespace], options: options)
            let machine = try SimulatedMachine(controller, backend: chosen)
            return try NVMeSession(
                address: machine.address, backend: chosen, system: machine.kernel, logger: logging.logger(), configuration: configuration
            ) {
                controller.stop()
            }
        }
        guard let address else { throw ValidationError("give the controller's PCI address, or --simulated") }
        let parsed: PCIAddress
        do { parsed = try PCIAddress(parsing: address) } catch { throw ValidationError("\"\(address)\" is not a PCI address: \(error)") }
        return try NVMeSession(
            address: parsed, backend: chosen, system: HostSystemCalls.shared, logger: logging.logger(), configuration: configuration
        ) {}
    }
}

extension NVMeTarget {
    /// `--create`'s size: bytes, or a number with K, M or G (powers of 1024), a whole number of 4096-byte blocks.
    static func parseSize(_ text: String) throws -> Int {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        let unit = text.last.flatMap { units[Character($0.uppercased())] }
        guard let number = Int(unit == nil ? text : String(text.dropLast())), number > 0,
            case let (size, overflow) = number.multipliedReportingOverflow(by: unit ?? 1), !overflow, size % 4096 == 0
        else {
            throw ValidationError("--create wants a size such as 64M, 1G or 1048576 (a multiple of 4096 bytes), not \"\(text)\"")
        }
        return size
    }
}

/// An open controller with the driver brought up.
final class NVMeSession {
    let device: PCIDevice
    let loop: EventLoop
    let driver: NVMeDriver
    private let onClose: () -> Void

    init(
        address: PCIAddress, backend: Backend, system: any SystemCalls, logger: Logger, configuration: NVMeDriver.Configuration,
        onClose: @escaping () -> Void
    ) throws {
        self.onClose = onClose
        device = try PCIDevice.open(address, backend: backend, system: system, logger: logger)
        do {
            loop = try EventLoop(system: system)
            try loop.start()
            do { driver = try NVMeDriver(device: device, loop: loop, configuration: configuration) } catch {
                loop.stop()
                throw error
            }
        } catch {
            device.close()
            throw error
        }
        do { try driver.bringUp() } catch {
            close()
            throw error
        }
    }

    /// The namespace `id`, or a clear error naming the ones there are.
    func namespace(_ id: UInt32) throws -> NVMeNamespaceIdentity {
        guard let ns = driver.namespaces.first(where: { $0.id == id }) else {
            throw ValidationError("no namespace \(id): the controller's active namespaces are \(driver.namespaces.map(\.id))")
        }
        return ns
    }

    /// Shuts the controller down and releases the device.
    func close() {
        driver.shutDown()
        loop.stop()
        device.close()
        onClose()
    }
}
