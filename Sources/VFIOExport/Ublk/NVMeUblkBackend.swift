#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers
import VFIOKit

/// A namespace of a brought-up ``NVMeDriver`` as ublk's backend: ublk queue `i` owns I/O queue
/// pair `i` for its whole life (``NVMeDriver/withQueuePair(_:_:)``), submitting and polling it
/// from the ublk queue's thread, so the driver must run with polled queues.
public final class NVMeUblkBackend: UblkBackend, @unchecked Sendable {
    public let driver: NVMeDriver
    public let namespaceID: UInt32
    public let geometry: UblkGeometry

    /// Throws when the namespace does not exist or the driver takes interrupts.
    public init(driver: NVMeDriver, namespace namespaceID: UInt32 = 1, readOnly: Bool = false) throws(UblkError) {
        guard driver.configuration.polled else {
            throw .unsupported("the ublk export polls its NVMe queues from its own threads: bring the driver up with polled queues")
        }
        guard let ns = driver.namespaces.first(where: { $0.id == namespaceID }) else {
            throw .geometry("namespace \(namespaceID) does not exist: the active namespaces are \(driver.namespaces.map(\.id))")
        }
        self.driver = driver
        self.namespaceID = namespaceID
        geometry = UblkGeometry(
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

    public func withQueue(_ index: Int, _ body: (any UblkBlockQueue) -> Void) throws(UblkError) {
        do throws(NVMeError) {
            try driver.withQueuePair(index) { pair in
                body(NVMeUblkQueue(pair: pair, namespaceID: namespaceID))
            }
        } catch {
            throw .unsupported("NVMe I/O queue pair \(index): \(error)")
        }
    }
}

/// One NVMe I/O queue pair serving one ublk queue: a ublk tag's request becomes one NVMe
/// command, whose command id maps back to the tag through a table allocated once.
final class NVMeUblkQueue: UblkBlockQueue {
    let pair: NVMeQueuePair
    let namespaceID: UInt32
    /// The ublk tag of each NVMe command id.
    private let tags: UnsafeMutablePointer<UInt16>

    init(pair: NVMeQueuePair, namespaceID: UInt32) {
        self.pair = pair
        self.namespaceID = namespaceID
        tags = .allocate(capacity: pair.entries)
        tags.initialize(repeating: 0, count: pair.entries)
    }

    deinit { tags.deallocate() }

    var outstanding: Int { pair.outstanding }

    @inline(__always)
    func start(_ request: UblkRequest, tag: UInt16, data: NVMeDataRange) throws(UblkRequestError) {
        var command: NVMeCommand
        var range: NVMeDataRange?
        switch request.operation {
        case .read, .write:
            command = .readWrite(write: request.operation == .write, namespaceID: namespaceID, lba: request.lba, blocks: Int(request.blocks))
            if request.fua { command.cdw12 |= 1 << 30 }
            range = NVMeDataRange(deviceAddress: data.deviceAddress, count: request.bytes)
        case .flush:
            command = .flush(namespaceID: namespaceID)
        case .discard, .writeZeroes:
            throw UblkRequestError(errno: EOPNOTSUPP)
        }
        do {
            let cid = try pair.submit(command, data: range)
            tags[Int(cid)] = tag
        } catch {
            throw UblkRequestError(errno: EIO)
        }
        pair.ring()
    }

    @inline(__always) @discardableResult
    func reap(_ body: (UInt16, Int32) -> Void) -> Int {
        pair.poll { completion in
            body(tags[Int(completion.commandID)], completion.succeeded ? 0 : -EIO)
        }
    }
}
