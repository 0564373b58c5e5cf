#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers
import VFIOKit

/// A namespace of a brought-up ``NVMeDriver`` as ublk's backend: ublk queue `i` is served on
/// the owner thread of I/O queue pair `firstQueue + i` (``NVMeDriver/queueOwner(_:)``), whose
/// polls (a polled driver) or CQ interrupts (an interrupt-driven one) hand the completions of
/// the commands it submitted to its ``NVMeQueueRouter``.
public final class NVMeUblkBackend: UblkBackend, @unchecked Sendable {
    public let driver: NVMeDriver
    public let namespaceID: UInt32
    private let namespace: NVMeNamespaceIdentity
    public let geometry: BlockGeometry
    /// The first I/O queue pair this backend uses (others of the driver may serve other exports).
    public let firstQueue: Int

    /// Throws when the namespace does not exist or the driver has no queue pair from
    /// `firstQueue` on.
    public init(driver: NVMeDriver, namespace namespaceID: UInt32 = 1, readOnly: Bool = false, firstQueue: Int = 0) throws(UblkError) {
        guard (0..<driver.queueCount).contains(firstQueue) else {
            throw .unsupported("the driver has \(driver.queueCount) I/O queue pairs, none from \(firstQueue) on")
        }
        self.firstQueue = firstQueue
        guard let ns = driver.namespaces.first(where: { $0.id == namespaceID }) else {
            throw .geometry("namespace \(namespaceID) does not exist: the active namespaces are \(driver.namespaces.map(\.id))")
        }
        self.driver = driver
        self.namespaceID = namespaceID
        namespace = ns
        // Discard is one Dataset Management range, advertised up to the controller's DMRSL (a
        // range's 2^32 - 1 blocks without one, which SET_PARAMS caps to 2^32 - 1 sectors) so the
        // kernel splits longer ones; write-zeroes up to WZSL. The queue chains commands all the
        // same should a request be longer. Each only where ONCS says the controller has the command.
        let controller = driver.controller
        let limits = driver.limits
        let zeroes = limits.maxWriteZeroesBytes == nil ? UInt32.max : limits.writeZeroesBlocks(blockSize: ns.blockSize)
        geometry = BlockGeometry(
            blockSize: ns.blockSize, blocks: ns.size, maxTransfer: driver.maxTransfer,
            volatileWriteCache: controller?.volatileWriteCache ?? true,
            maxDiscardBlocks: controller?.supportsDatasetManagement == true ? limits.deallocateRangeBlocks : nil,
            maxWriteZeroesBlocks: controller?.supportsWriteZeroes == true ? zeroes : nil,
            readOnly: readOnly)
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

    public func reactor(forQueue index: Int) throws(UblkError) -> QueueReactor {
        try owner(index).reactor
    }

    public func openQueue(_ index: Int) throws(UblkError) -> any UblkBlockQueue {
        let owner = try owner(index)
        let router = NVMeQueueRouter(pair: owner.pair)
        owner.direct = router
        do throws(VFIOError) {
            return try NVMeBlockQueue(router: router, namespace: namespace, tags: queueDepth, dma: driver.device.dma, limits: driver.limits,
                maxTransfer: driver.maxTransfer)
        } catch {
            owner.direct = nil
            throw .system(operation: "allocating ublk queue \(index)'s NVMe range lists (\(error))", errno: ENOMEM)
        }
    }

    public func closeQueue(_ queue: any UblkBlockQueue, index: Int) {
        guard let queue = queue as? NVMeBlockQueue else { return }
        queue.leave()
        if let owner = try? owner(index), owner.direct === queue.router { owner.direct = nil }
    }

    private func owner(_ index: Int) throws(UblkError) -> NVMeQueueOwner {
        do throws(NVMeError) {
            return try driver.queueOwner(firstQueue + index)
        } catch {
            throw .unsupported("NVMe I/O queue pair \(firstQueue + index): \(error)")
        }
    }
}
