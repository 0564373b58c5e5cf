#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers
import VFIOKit

/// One export queue on an NVMe namespace: each ``BlockRequest`` becomes NVMe commands on the
/// router's queue pair, its completion comes back under the request's tag. Read; Write (FUA as
/// Force Unit Access); Flush; discard as Dataset Management deallocate of one range, whose
/// descriptor sits in the tag's slot of a range list allocated once; write-zeroes as Write
/// Zeroes (Deallocate when the request may unmap and the namespace's DLFEAT says Write Zeroes
/// honours it). A request over what one command may cover (a read or write past the
/// transfer step; a discard past the controller's DMRSL; a write-zeroes past 65,536 blocks or
/// its WZSL: ``NVMeNVMLimits``) runs as a chain of commands under its tag, one after another. Several queues may share a pair (NBD connections on one owner
/// thread); each keeps its finished requests in a ring allocated once.
///
/// Owner thread only; ``start(_:)`` and ``reap(_:)`` take no lock and allocate nothing.
public final class NVMeBlockQueue: BlockQueue {
    public let router: NVMeQueueRouter
    public let namespaceID: UInt32
    /// Tags are 0..<tags.
    public let tags: Int
    /// Called on the owner thread after a poll, when this queue has finished requests to reap
    /// or ``waitingForRoom`` and the pair has a free slot again.
    public var onReady: (() -> Void)?
    /// Set by the frontend while a request waits for ``canStart``.
    public var waitingForRoom = false
    public private(set) var outstanding = 0
    private let writeZeroesDeallocates: Bool
    private let blockSize: Int
    /// Blocks one Write Zeroes command covers at most (NLB's 65,536, or less by WZSL), and one
    /// Dataset Management range (DMRSL).
    private let writeZeroesStep: UInt32
    private let discardStep: UInt32
    /// Blocks one Read or Write command moves at most.
    private let transferStep: UInt32
    /// Per tag: one Dataset Management range descriptor.
    private let rangeList: DMABuffer
    /// Per tag: what a chain still has to do after its current command, and for a read or
    /// write where its data goes on.
    private let chainLBA: UnsafeMutablePointer<UInt64>
    private let chainAddress: UnsafeMutablePointer<UInt64>
    private let chainLeft: UnsafeMutablePointer<UInt32>
    private let chainCommand: UnsafeMutablePointer<NVMeCommand>
    /// Finished requests not yet reaped: (tag, result), a ring as large as the pair.
    private let finishedTags: UnsafeMutablePointer<UInt16>
    private let finishedResults: UnsafeMutablePointer<Int32>
    private let capacity: Int
    private var head = 0
    private(set) var finishedCount = 0

    /// Joins `router`'s pair (on its owner thread, or a thread that holds the pair) for tags
    /// 0..<`tags` of namespace `namespace`, allocating the range list from `dma`; commands keep
    /// to `limits` (the driver's ``NVMeDriver/limits``), and a Read or Write to `maxTransfer`
    /// bytes (at most the driver's ``NVMeDriver/maxTransfer``).
    public init(
        router: NVMeQueueRouter, namespace: NVMeNamespaceIdentity, tags: Int, dma: DMASpace, limits: NVMeNVMLimits = NVMeNVMLimits(),
        maxTransfer: Int
    ) throws(VFIOError) {
        self.router = router
        namespaceID = namespace.id
        self.tags = tags
        writeZeroesDeallocates = namespace.writeZeroesCanDeallocate
        blockSize = namespace.blockSize
        writeZeroesStep = limits.writeZeroesBlocks(blockSize: namespace.blockSize)
        discardStep = limits.deallocateRangeBlocks
        transferStep = UInt32(clamping: max(1, maxTransfer / namespace.blockSize))
        rangeList = try dma.allocate(max(1, tags) * NVMeBlockRange.descriptorSize)
        capacity = router.pair.entries
        finishedTags = .allocate(capacity: capacity)
        finishedTags.initialize(repeating: 0, count: capacity)
        finishedResults = .allocate(capacity: capacity)
        finishedResults.initialize(repeating: 0, count: capacity)
        chainLBA = .allocate(capacity: tags)
        chainLBA.initialize(repeating: 0, count: tags)
        chainAddress = .allocate(capacity: tags)
        chainAddress.initialize(repeating: 0, count: tags)
        chainLeft = .allocate(capacity: tags)
        chainLeft.initialize(repeating: 0, count: tags)
        chainCommand = .allocate(capacity: tags)
        chainCommand.initialize(repeating: NVMeCommand(opcode: 0), count: tags)
        router.join(self)
    }

    deinit {
        finishedTags.deallocate()
        finishedResults.deallocate()
        chainLBA.deallocate()
        chainAddress.deallocate()
        chainLeft.deallocate()
        chainCommand.deallocate()
    }

    /// Leaves the router: completions of this queue's outstanding commands are dropped from
    /// then on (call once none are outstanding, or when abandoning them).
    public func leave() { router.leave(self) }

    public var canStart: Bool { router.pair.canSubmit }

    @inline(__always)
    public func start(_ request: BlockRequest) throws(BlockRequestError) {
        let tag = Int(request.tag)
        guard tag < tags else { throw BlockRequestError(errno: EINVAL) }
        if let owner = router.owner, owner.controllerFailed { throw BlockRequestError(errno: EIO) }
        var command: NVMeCommand
        var range: NVMeDataRange?
        switch request.operation {
        case .read, .write:
            let first = min(request.blocks, transferStep)
            command = .readWrite(write: request.operation == .write, namespaceID: namespaceID, lba: request.lba, blocks: Int(first), fua: request.fua)
            let bytes = Int(first) * blockSize
            range = NVMeDataRange(deviceAddress: request.data.deviceAddress, count: bytes)
            chain(tag, command, from: request.lba + UInt64(first), left: request.blocks - first)
            chainAddress[tag] = request.data.deviceAddress + UInt64(bytes)
        case .flush:
            command = .flush(namespaceID: namespaceID)
        case .discard:
            let first = min(request.blocks, discardStep)
            range = storeRange(tag: tag, lba: request.lba, blocks: first)
            command = .deallocate(namespaceID: namespaceID, ranges: 1)
            chain(tag, command, from: request.lba + UInt64(first), left: request.blocks - first)
        case .writeZeroes:
            let first = min(request.blocks, writeZeroesStep)
            command = .writeZeroes(
                namespaceID: namespaceID, lba: request.lba, blocks: Int(first),
                deallocate: request.unmap && writeZeroesDeallocates, fua: request.fua)
            chain(tag, command, from: request.lba + UInt64(first), left: request.blocks - first)
        }
        let pair = router.pair
        do {
            let cid = try pair.submit(command, data: range)
            router.record(cid, self, tag: request.tag)
        } catch {
            chainLeft[tag] = 0
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

    /// Writes `tag`'s one Dataset Management range descriptor and returns where it lies.
    @inline(__always)
    private func storeRange(tag: Int, lba: UInt64, blocks: UInt32) -> NVMeDataRange {
        let offset = tag * NVMeBlockRange.descriptorSize
        NVMeBlockRange(lba: lba, blocks: blocks).store(to: rangeList.bytes.baseAddress! + offset)
        return NVMeDataRange(deviceAddress: rangeList.deviceAddress + UInt64(offset), count: NVMeBlockRange.descriptorSize)
    }

    /// Remembers what `tag`'s chain still has to do after `command`: `left` blocks from `lba`.
    @inline(__always)
    private func chain(_ tag: Int, _ command: NVMeCommand, from lba: UInt64, left: UInt32) {
        chainLBA[tag] = lba
        chainLeft[tag] = left
        chainCommand[tag] = command
    }

    /// One command of `tag` completed (inside the pair's poll, its slot already free): the next
    /// link of a write-zeroes or discard chain goes out in that slot, or the request is finished.
    @inline(__always)
    func finished(tag: UInt16, result: Int32) {
        let t = Int(tag)
        if tag < tags, chainLeft[t] > 0 {
            if result == 0 {
                var command = chainCommand[t]
                let blocks: UInt32
                var range: NVMeDataRange?
                if command.opcode == NVMeCommand.Opcode.datasetManagement {
                    blocks = min(chainLeft[t], discardStep)
                    range = storeRange(tag: t, lba: chainLBA[t], blocks: blocks)
                } else {
                    let transfers = command.opcode != NVMeCommand.Opcode.writeZeroes
                    blocks = min(chainLeft[t], transfers ? transferStep : writeZeroesStep)
                    if transfers {
                        range = NVMeDataRange(deviceAddress: chainAddress[t], count: Int(blocks) * blockSize)
                        chainAddress[t] += UInt64(Int(blocks) * blockSize)
                    }
                    command.cdw10 = UInt32(truncatingIfNeeded: chainLBA[t])
                    command.cdw11 = UInt32(truncatingIfNeeded: chainLBA[t] >> 32)
                    command.cdw12 = command.cdw12 & ~0xffff | (blocks - 1)
                }
                chainLBA[t] += UInt64(blocks)
                chainLeft[t] -= blocks
                if let cid = try? router.pair.submit(command, data: range) {
                    router.record(cid, self, tag: tag)
                    router.pair.ring()
                    return
                }
                chainLeft[t] = 0
                push(tag, -EIO)
                return
            }
            chainLeft[t] = 0
        }
        push(tag, result)
    }

    @inline(__always)
    private func push(_ tag: UInt16, _ result: Int32) {
        let i = (head + finishedCount) % capacity
        finishedTags[i] = tag
        finishedResults[i] = result
        finishedCount += 1
    }
}
