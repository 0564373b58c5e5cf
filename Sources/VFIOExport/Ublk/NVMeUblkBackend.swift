#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers
import VFIOKit

/// A namespace of a brought-up ``NVMeDriver`` as ublk's backend: ublk queue `i` is served on
/// the owner thread of I/O queue pair `i` (``NVMeDriver/queueOwner(_:)``), whose polls (a
/// polled driver) or CQ interrupts (an interrupt-driven one) hand the completions of the
/// commands it submitted to its ``NVMeQueueRouter``.
public final class NVMeUblkBackend: UblkBackend, @unchecked Sendable {
    public let driver: NVMeDriver
    public let namespaceID: UInt32
    public let geometry: BlockGeometry

    /// Throws when the namespace does not exist.
    public init(driver: NVMeDriver, namespace namespaceID: UInt32 = 1, readOnly: Bool = false) throws(UblkError) {
        guard let ns = driver.namespaces.first(where: { $0.id == namespaceID }) else {
            throw .geometry("namespace \(namespaceID) does not exist: the active namespaces are \(driver.namespaces.map(\.id))")
        }
        self.driver = driver
        self.namespaceID = namespaceID
        geometry = BlockGeometry(
            blockSize: ns.blockSize, blocks: ns.size, maxTransfer: driver.maxTransfer,
            volatileWriteCache: driver.controller?.volatileWriteCache ?? true, readOnly: readOnly)
    }

    public var queueCount: Int { driver.queueCount }
    public var queueDepth: Int { max(1, driver.configuration.queueDepth - 1) }

    public func allocateData(_ bytes: Int) throws(UblkError) -> DMABuffer {
        do throws(VFIOError) {
            return try driver.device.dma.allocate(bytes)
        } catch {
            throw .system(operation: "allocating \(bytes) bytes of DMA memory for ublk's tag buffers (\(error))", errno: ENOMEM)
        }
    }

    public func reactor(forQueue index: Int) throws(UblkError) -> QueueReactor {
        try owner(index).reactor
    }

    public func openQueue(_ index: Int) throws(UblkError) -> any UblkBlockQueue {
        let owner = try owner(index)
        let router = NVMeQueueRouter(pair: owner.pair)
        owner.direct = router
        return NVMeBlockQueue(router: router, namespaceID: namespaceID)
    }

    public func closeQueue(_ queue: any UblkBlockQueue, index: Int) {
        guard let queue = queue as? NVMeBlockQueue else { return }
        queue.leave()
        if let owner = try? owner(index), owner.direct === queue.router { owner.direct = nil }
    }

    private func owner(_ index: Int) throws(UblkError) -> NVMeQueueOwner {
        do throws(NVMeError) {
            return try driver.queueOwner(index)
        } catch {
            throw .unsupported("NVMe I/O queue pair \(index): \(error)")
        }
    }
}
