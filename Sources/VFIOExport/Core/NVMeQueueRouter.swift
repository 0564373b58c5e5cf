#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers

/// The block queues one NVMe I/O queue pair serves, and which of them each command id belongs
/// to: command ids are the pair's, so when several export queues (NBD connections) share a
/// pair, a completion finds its queue and tag here, in tables allocated once.
///
/// Owner thread only. As its owner's ``NVMeQueueOwner/direct`` (``install(on:)``) it gets the
/// completions the owner's polls reap; ``poll()`` reaps them itself (a ublk queue that holds
/// the owner thread). After a poll that found completions, each member queue that has finished
/// requests, or waits for a free slot that now exists, is told (``NVMeBlockQueue/onReady``).
public final class NVMeQueueRouter: NVMeDirectCompletions {
    public let pair: NVMeQueuePair
    /// Per command id: the queue that started it (unretained: a member outlives its commands)
    /// and its tag.
    private let queues: UnsafeMutablePointer<Unmanaged<NVMeBlockQueue>?>
    private let tags: UnsafeMutablePointer<UInt16>
    /// The queues that may be told (control path: changed on join and leave only).
    private var members: [NVMeBlockQueue] = []
    private var polling = false

    /// The pair's owner, when the router serves on its thread: new commands are refused once
    /// the driver gave the controller up.
    public let owner: NVMeQueueOwner?

    /// A router for `owner`'s pair, to install on it.
    public convenience init(owner: NVMeQueueOwner) {
        self.init(pair: owner.pair, owner: owner)
    }

    /// A router for a pair its caller holds (and polls) itself.
    public init(pair: NVMeQueuePair, owner: NVMeQueueOwner? = nil) {
        self.pair = pair
        self.owner = owner
        queues = .allocate(capacity: pair.entries)
        queues.initialize(repeating: nil, count: pair.entries)
        tags = .allocate(capacity: pair.entries)
        tags.initialize(repeating: 0, count: pair.entries)
    }

    deinit {
        queues.deallocate()
        tags.deallocate()
    }

    /// Makes this router `owner`'s ``NVMeQueueOwner/direct`` (on the owner thread).
    public func install(on owner: NVMeQueueOwner) {
        owner.reactor.run { owner.direct = self }
    }

    /// Undoes ``install(on:)`` (on the owner thread).
    public func uninstall(from owner: NVMeQueueOwner) {
        owner.reactor.run { if owner.direct === self { owner.direct = nil } }
    }

    func join(_ queue: NVMeBlockQueue) { members.append(queue) }

    func leave(_ queue: NVMeBlockQueue) {
        members.removeAll { $0 === queue }
        for cid in 0..<pair.entries where queues[cid]?.takeUnretainedValue() === queue { queues[cid] = nil }
    }

    /// Records that `cid` is `queue`'s request `tag`.
    @inline(__always)
    func record(_ cid: UInt16, _ queue: NVMeBlockQueue, tag: UInt16) {
        queues[Int(cid)] = Unmanaged.passUnretained(queue)
        tags[Int(cid)] = tag
    }

    /// Reaps the pair's completions into their queues and tells the members; returns how many.
    /// A poll from inside a member's ``NVMeBlockQueue/onReady`` finds nothing (it is this one).
    @discardableResult @inline(__always)
    public func poll() -> Int {
        guard !polling else { return 0 }
        polling = true
        let n = pair.poll { complete($0) }
        polling = false
        if n > 0 { polled() }
        return n
    }

    @inline(__always)
    public func complete(_ completion: NVMeCompletion) {
        let cid = Int(completion.commandID)
        guard let queue = queues[cid] else { return }
        queues[cid] = nil
        queue.takeUnretainedValue().finished(tag: tags[cid], result: completion.succeeded ? 0 : -EIO)
    }

    @inline(__always)
    public func polled() {
        let room = pair.canSubmit
        for queue in members where queue.finishedCount > 0 || (room && queue.waitingForRoom) {
            queue.onReady?()
        }
    }
}
