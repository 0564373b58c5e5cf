#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers
import VFIOKit

/// A namespace of a brought-up ``NVMeDriver`` as ublk's backend: ublk queue `i` owns I/O queue
/// pair `firstQueue + i` for its whole life (``NVMeDriver/withQueuePair(_:_:)``), submitting and polling it
/// from the ublk queue's thread, so the driver must run with polled queues.
public final class NVMeUblkBackend: UblkBackend, @unchecked Sendable {
    public let driver: NVMeDriver
    public let namespaceID: UInt32
    private let namespace: NVMeNamespaceIdentity
    public let geometry: BlockGeometry
    /// The first I/O queue pair this backend uses (others of the driver may serve other exports).
    public let firstQueue: Int

    /// Throws when the namespace does not exist, the driver takes interrupts, or it has no
    /// queue pair from `firstQueue` on.
    public init(driver: NVMeDriver, namespace namespaceID: UInt32 = 1, readOnly: Bool = false, firstQueue: Int = 0) throws(UblkError) {
        guard (0..<driver.queueCount).contains(firstQueue) else {
            throw .unsupported("the driver has \(driver.queueCount) I/O queue pairs, none from \(firstQueue) on")
        }
        self.firstQueue = firstQueue
        guard driver.configuration.polled else {
            throw .unsupported("the ublk export polls its NVMe queues from its own threads: bring the driver up with polled queues")
        }
        guard let ns = driver.namespaces.first(where: { $0.id == namespaceID }) else {
            throw .geometry("namespace \(namespaceID) does not exist: the active namespaces are \(driver.namespaces.map(\.id))")
        }
        self.driver = driver
        self.namespaceID = namespaceID
        namespace = ns
        geometry = BlockGeometry(
            blockSize: ns.blockSize, blocks: ns.size, maxTransfer: driver.maxTransfer,
            volatileWriteCache: driver.controller?.volatileWriteCache ?? true, readOnly: readOnly)
    }

    public var queueCount: Int { driver.queueCount - firstQueue }
    public var queueDepth: Int { max(1, driver.configuration.queueDepth - 1) }

    public func allocateData(_ bytes: Int) throws(UblkError) -> DMABuffer {
        do throws(VFIOError) {
            return try driver.device.dma.allocate(bytes)
        } catch {
            throw .system(operation: "allocating \(bytes) bytes of DMA memory for ublk's tag buffers (\(error))", errno: ENOMEM)
        }
    }

    public func withQueue(_ index: Int, _ body: (any BlockQueue) -> Void) throws(UblkError) {
        do throws(NVMeError) {
            try driver.withQueuePair(firstQueue + index) { (pair) throws(NVMeError) in
                // The ublk queue holds the owner thread while it serves, so it polls the pair itself.
                let queue: NVMeBlockQueue
                do throws(VFIOError) {
                    queue = try NVMeBlockQueue(router: NVMeQueueRouter(pair: pair), namespace: namespace, tags: queueDepth, dma: driver.device.dma)
                } catch {
                    throw .framework(error)
                }
                body(queue)
                queue.leave()
            }
        } catch {
            throw .unsupported("NVMe I/O queue pair \(firstQueue + index): \(error)")
        }
    }
}
