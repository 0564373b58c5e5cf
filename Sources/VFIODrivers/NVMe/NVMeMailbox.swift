import Synchronization

/// The lock-free hand-off of async requests to a queue's owner thread: a fixed pool of request
/// records, each claimed by one task (a compare-and-swap on a bit of the `free` map), filled,
/// and posted (an atomic or into the `posted` map); the owner takes every posted record with
/// one exchange per 64 records. Records are allocated once: a request allocates nothing.
///
/// The outcome travels in the record, published by the owner with a release store of `done`
/// before it resumes the task, and read by the task after an acquire load: the continuation
/// carries no value, so the hand-off is ordered by atomics ThreadSanitizer sees, whether the
/// resume comes before or after the task suspended.
final class NVMeMailbox: @unchecked Sendable {
    struct Record {
        var command = NVMeCommand(opcode: 0)
        var data: NVMeDataRange?
        /// A scatter request's segments (the caller's list, borrowed until it completes) and mode.
        var segments: UnsafeBufferPointer<NVMeDataRange>?
        var mode = NVMeTransferMode.automatic
        var waiter: UnsafeContinuation<Void, Never>?
        var outcome: Result<UInt32, NVMeError> = .success(0)
        /// Times the command was submitted again after a retryable status.
        var attempts = 0
        /// CLOCK_MONOTONIC_COARSE nanoseconds before which a parked retry waits.
        var retryAt: UInt64 = 0
    }

    /// How many retries a request gets, and the first back-off in nanoseconds (doubling).
    var retryLimit = 0
    var retryBackoff: UInt64 = 0
    /// CRDT1–3 in nanoseconds, waited instead of the back-off when a status's CRD names one
    /// (set on the owner thread; zeroes while Advanced Command Retry is off).
    var retryDelays: (UInt64, UInt64, UInt64) = (0, 0, 0)
    /// Records waiting out their back-off: owned by the owner thread (no atomics).
    private let parked: UnsafeMutablePointer<Int>
    private(set) var parkedCount = 0
    private var parkedHead = 0

    let capacity: Int
    private let words: Int
    let records: UnsafeMutablePointer<Record>
    private let done: UnsafeMutablePointer<Atomic<Bool>>
    /// Bit set: the record is taken.
    private let taken: UnsafeMutablePointer<Atomic<UInt64>>
    /// Bit set: the record waits for the owner.
    private let posted: UnsafeMutablePointer<Atomic<UInt64>>

    init(capacity: Int) {
        words = (capacity + 63) / 64
        self.capacity = words * 64
        records = .allocate(capacity: self.capacity)
        records.initialize(repeating: Record(), count: self.capacity)
        done = .allocate(capacity: self.capacity)
        for i in 0..<self.capacity { (done + i).initialize(to: Atomic(false)) }
        taken = .allocate(capacity: words)
        posted = .allocate(capacity: words)
        parked = .allocate(capacity: self.capacity)
        for i in 0..<words {
            (taken + i).initialize(to: Atomic(0))
            (posted + i).initialize(to: Atomic(0))
        }
    }

    deinit {
        records.deinitialize(count: capacity)
        records.deallocate()
        done.deinitialize(count: capacity)
        done.deallocate()
        taken.deinitialize(count: words)
        taken.deallocate()
        posted.deinitialize(count: words)
        posted.deallocate()
        parked.deallocate()
    }

    /// A free record, now the caller's; nil when `capacity` requests are already waiting.
    func claim() -> Int? {
        for w in 0..<words {
            var bits = taken[w].load(ordering: .relaxed)
            while bits != ~0 {
                let bit = (~bits).trailingZeroBitCount
                let (exchanged, now) = taken[w].compareExchange(
                    expected: bits, desired: bits | 1 << bit, ordering: .acquiring)
                if exchanged { return w * 64 + bit }
                bits = now
            }
        }
        return nil
    }

    /// Hands record `i` (filled, its waiter set) to the owner.
    @inline(__always)
    func post(_ i: Int) {
        _ = posted[i / 64].bitwiseOr(1 << UInt64(i % 64), ordering: .sequentiallyConsistent)
    }

    /// On the owner: runs `body` for every posted record.
    @inline(__always)
    func drain(_ body: (Int) -> Void) {
        for w in 0..<words {
            guard posted[w].load(ordering: .relaxed) != 0 else { continue }
            var bits = posted[w].exchange(0, ordering: .acquiring)
            while bits != 0 {
                let bit = bits.trailingZeroBitCount
                bits &= bits - 1
                body(w * 64 + bit)
            }
        }
    }

    /// On the owner: records `outcome` for `i` and resumes its task.
    @inline(__always)
    func complete(_ i: Int, _ outcome: Result<UInt32, NVMeError>) {
        records[i].outcome = outcome
        let waiter = records[i].waiter
        records[i].waiter = nil
        done[i].store(true, ordering: .releasing)
        waiter?.resume()
    }

    /// On the task, after its resume: the outcome, and the record freed.
    func take(_ i: Int) -> Result<UInt32, NVMeError> {
        precondition(done[i].load(ordering: .acquiring), "a request was resumed before its outcome was recorded")
        done[i].store(false, ordering: .relaxed)
        let outcome = records[i].outcome
        records[i].outcome = .success(0)
        records[i].data = nil
        records[i].attempts = 0
        records[i].segments = nil
        _ = taken[i / 64].bitwiseAnd(~(1 << UInt64(i % 64)), ordering: .releasing)
        return outcome
    }

    // MARK: Retries (the owner thread)

    /// Parks record `i`, which failed with `status`, for a retry when the status allows one
    /// and its retries are not used up; false when it must fail now. The wait is the CRDT the
    /// status's CRD names, or else the back-off, doubled for each earlier retry.
    @inline(__always)
    func retryLater(_ i: Int, _ status: NVMeStatus) -> Bool {
        guard status.isRetryable, records[i].attempts < retryLimit else { return false }
        records[i].attempts += 1
        let wait =
            switch status.retryDelay {
            case 1: retryDelays.0
            case 2: retryDelays.1
            case 3: retryDelays.2
            default: retryBackoff << UInt64(records[i].attempts - 1)
            }
        records[i].retryAt = NVMeQueuePair.coarseNow() &+ wait
        parked[(parkedHead + parkedCount) % capacity] = i
        parkedCount += 1
        return true
    }

    /// Takes every parked record whose back-off is over (`all`: every one) and hands it to
    /// `body`; the rest stay parked, in order.
    func takeParked(all: Bool = false, _ body: (Int) -> Void) {
        let now = NVMeQueuePair.coarseNow()
        for _ in 0..<parkedCount {
            let i = parked[parkedHead]
            parkedHead = (parkedHead + 1) % capacity
            parkedCount -= 1
            if all || records[i].retryAt <= now {
                body(i)
            } else {
                parked[(parkedHead + parkedCount) % capacity] = i
                parkedCount += 1
            }
        }
    }
}
