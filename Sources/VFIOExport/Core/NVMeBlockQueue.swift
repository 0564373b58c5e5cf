#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers

/// One export queue on an NVMe namespace: each ``BlockRequest`` becomes one NVMe command on
/// the router's queue pair (Read or Write with FUA as cdw12 bit 30, Flush), its completion comes
/// back under the request's tag. Several queues may share a pair (NBD connections on one owner
/// thread); each keeps its finished requests in a ring allocated once.
///
/// Owner thread only; ``start(_:)`` and ``reap(_:)`` take no lock and allocate nothing.
public final class NVMeBlockQueue: BlockQueue {
    public let router: NVMeQueueRouter
    public let namespaceID: UInt32
    /// Called on the owner thread after a poll, when this queue has finished requests to reap
    /// or ``waitingForRoom`` and the pair has a free slot again.
    public var onReady: (() -> Void)?
    /// Set by the frontend while a request waits for ``canStart``.
    public var waitingForRoom = false
    public private(set) var outstanding = 0
    /// Finished requests not yet reaped: (tag, result), a ring as large as the pair.
    private let finishedTags: UnsafeMutablePointer<UInt16>
    private let finishedResults: UnsafeMutablePointer<Int32>
    private let capacity: Int
    private var head = 0
    private(set) var finishedCount = 0

    /// Joins `router`'s pair (on its owner thread, or a thread that holds the pair).
    public init(router: NVMeQueueRouter, namespaceID: UInt32) {
        self.router = router
        self.namespaceID = namespaceID
        capacity = router.pair.entries
        finishedTags = .allocate(capacity: capacity)
        finishedTags.initialize(repeating: 0, count: capacity)
        finishedResults = .allocate(capacity: capacity)
        finishedResults.initialize(repeating: 0, count: capacity)
        router.join(self)
    }

    deinit {
        finishedTags.deallocate()
        finishedResults.deallocate()
    }

    /// Leaves the router: completions of this queue's outstanding commands are dropped from
    /// then on (call once none are outstanding, or when abandoning them).
    public func leave() { router.leave(self) }

    public var canStart: Bool { router.pair.canSubmit }

    @inline(__always)
    public func start(_ request: BlockRequest) throws(BlockRequestError) {
        var command: NVMeCommand
        var range: NVMeDataRange?
        switch request.operation {
        case .read, .write:
            command = .readWrite(write: request.operation == .write, namespaceID: namespaceID, lba: request.lba, blocks: Int(request.blocks))
            if request.fua { command.cdw12 |= 1 << 30 }
            range = NVMeDataRange(deviceAddress: request.data.deviceAddress, count: request.bytes)
        case .flush:
            command = .flush(namespaceID: namespaceID)
        case .discard, .writeZeroes:
            throw BlockRequestError(errno: EOPNOTSUPP)
        }
        let pair = router.pair
        do {
            let cid = try pair.submit(command, data: range)
            router.record(cid, self, tag: request.tag)
        } catch {
            throw BlockRequestError(errno: EIO)
        }
        outstanding += 1
        pair.ring()
    }

    /// Polls the pair (unless this runs inside the router's own poll) and hands over this
    /// queue's finished requests.
    @inline(__always) @discardableResult
    public func reap(_ body: (UInt16, Int32) -> Void) -> Int {
        router.poll()
        let n = finishedCount
        while finishedCount > 0 {
            let tag = finishedTags[head], result = finishedResults[head]
            head = head + 1 == capacity ? 0 : head + 1
            finishedCount -= 1
            outstanding -= 1
            body(tag, result)
        }
        return n
    }

    @inline(__always)
    func finished(tag: UInt16, result: Int32) {
        let i = (head + finishedCount) % capacity
        finishedTags[i] = tag
        finishedResults[i] = result
        finishedCount += 1
    }
}
