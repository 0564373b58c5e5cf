import Dispatch
import Synchronization
import VFIOKit

/// The MSI-X loopback as a hosted driver: start arms every MSI-X vector (up to
/// ``maximumVectors``) on the event loop; each ``exercise()`` fires them all with VFIO's
/// software trigger and waits until each has arrived.
///
/// It never touches the device's registers, so it is safe on any function bound to vfio-pci.
/// Its match table is empty: any MSI-X device will do, so it is chosen only by name
/// (`--driver msix-loopback` or the config file), never by match.
public final class MSIXLoopbackDriver: ExercisableDriver {
    public static let name = MSIXLoopbackTest.name
    public static let matches: [PCIMatch] = []
    /// Vectors armed at most, to keep one exercise short on devices with 2048.
    public static let maximumVectors = 64

    private let device: PCIDevice
    private let loop: EventLoop
    private let vectorCount: Int
    private let counters: ActivityCounters
    private let registrations = Mutex(EventLoop.Registrations())
    /// Vectors fired by the current exercise and not yet seen arriving.
    private let outstanding = Atomic<Int>(0)
    private let arrived = DispatchSemaphore(value: 0)

    public init(device: PCIDevice, loop: EventLoop) throws {
        let info = try device.interrupts.info(.msix)
        guard info.count > 0 else {
            throw MSIXLoopbackError.noMSIX(device: device.address.description, backend: device.backend.description)
        }
        self.device = device
        self.loop = loop
        vectorCount = min(info.count, Self.maximumVectors)
        counters = ActivityCounters(vectors: (0..<vectorCount).map { ("MSI-X \($0)", nil) })
    }

    public func start() throws {
        let sources = try device.interrupts.enable(.msix, vectors: vectorCount)
        try registrations.withLock { (owned) throws(VFIOError) in
            for source in sources {
                let vector = source.vector
                owned.append(
                    try loop.register(source) { [unowned self] count in
                        counters.interrupted(vector, count: count)
                        outstanding.subtract(1, ordering: .releasing)
                        arrived.signal()
                    })
            }
        }
    }

    /// Ends every handler and disables MSI-X; safe after a start that failed half-way.
    public func stop() {
        registrations.withLock { $0 = EventLoop.Registrations() }  // the old ones end
        try? device.interrupts.disable(.msix)
    }

    public var activity: DriverActivity { counters.snapshot }

    /// Fires every armed vector once and waits up to two seconds for all of them.
    public func exercise() throws {
        outstanding.store(vectorCount, ordering: .releasing)
        do {
            for vector in 0..<vectorCount { try device.interrupts.trigger(.msix, vector: vector) }
            let deadline = DispatchTime.now() + .seconds(2)
            while outstanding.load(ordering: .acquiring) > 0 {
                guard arrived.wait(timeout: deadline) == .success else {
                    throw MSIXLoopbackError.lost(vectors: outstanding.load(ordering: .acquiring), of: vectorCount)
                }
            }
            while arrived.wait(timeout: .now()) == .success {}
            counters.completed()
        } catch {
            counters.failed()
            throw error
        }
    }
}

/// Why the MSI-X loopback driver could not probe or exercise a device.
public enum MSIXLoopbackError: Error, CustomStringConvertible {
    case noMSIX(device: String, backend: String)
    case lost(vectors: Int, of: Int)

    public var description: String {
        switch self {
        case let .noMSIX(device, backend):
            "\(device) has no MSI-X vectors on the \(backend) backend (UIO delivers INTx only): choose another driver"
        case let .lost(vectors, total):
            "\(vectors) of \(total) fired MSI-X vectors did not arrive within 2 s"
        }
    }
}
