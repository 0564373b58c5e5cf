#if canImport(Glibc)
import Glibc
#endif
import VFIOKit

/// A submission queue, its completion queue and their command slots, in DMA memory.
///
/// Not thread-safe: one thread uses a pair for its whole life (its ``NVMeQueueOwner``'s).
/// ``submit(_:data:offset:length:)``, ``ring()`` and ``poll(limit:_:)`` allocate nothing and
/// retain nothing: state sits in memory allocated once, and completions are handed to a
/// non-escaping closure. Command ids are slot numbers, so a completion finds its command by
/// indexing, and at most `entries - 1` commands are outstanding (a full SQ).
public final class NVMeQueuePair: @unchecked Sendable {
    /// The queue id (0 for the admin queue).
    public let id: Int
    /// Entries in each of the SQ and the CQ.
    public let entries: Int
    /// The largest transfer one command may carry, in bytes (MDTS).
    public let maxTransfer: Int
    /// Whether (and how) the controller takes SGLs.
    public let sgl: NVMeSGLSupport
    /// PRP list (or SGL segment) pages per slot: enough for ``maxTransfer``.
    let listPages: Int
    static let pageSize = 4096

    /// What a slot remembers about its command.
    struct Slot {
        var inUse = false
        var command = NVMeCommand(opcode: 0)
        /// CLOCK_MONOTONIC_COARSE nanoseconds at submission.
        var submittedAt: UInt64 = 0
        /// The driver gave up on it (aborted, or the controller was reset).
        var timedOut = false
        /// The mailbox record completed with the result (async requests), or -1.
        var request = -1
        /// Keep the completion here for ``takeCompletion(_:)`` instead of freeing the slot.
        var keepCompletion = false
        /// The outcome kept for ``takeOutcome(_:)``.
        var outcome: Result<UInt32, NVMeError>?
        /// Resets in place the command was resubmitted after.
        var resets = 0
    }

    struct State {
        var sqTail = 0
        var sqHead = 0
        var cqHead = 0
        var phase: UInt32 = 1
        var freeCount = 0
        var unrung = false
    }

    let submissionQueue: DMABuffer
    let completionQueue: DMABuffer
    /// ``listPages`` pages of PRP list or SGL descriptors per slot.
    let prpLists: DMABuffer
    private let sqDoorbell: NVMeDoorbell
    private let cqDoorbell: NVMeDoorbell
    private let state: UnsafeMutablePointer<State>
    let slots: UnsafeMutablePointer<Slot>
    private let freeIDs: UnsafeMutablePointer<UInt16>
    /// Where async requests' outcomes go; set by the owner, which outlives its use here.
    unowned(unsafe) var mailbox: NVMeMailbox?

    init(
        id: Int, entries: Int, maxTransfer: Int, sgl: NVMeSGLSupport = .unsupported, dma: DMASpace, bar: Region, doorbellStride: Int
    ) throws(NVMeError) {
        self.id = id
        self.entries = entries
        self.maxTransfer = maxTransfer
        self.sgl = sgl
        // A transfer needs maxTransfer / page entries after PRP1; k chained pages hold 511k + 1.
        listPages = max(1, (maxTransfer / Self.pageSize - 1 + 510) / 511)
        do throws(VFIOError) {
            submissionQueue = try dma.allocate(entries * 64)
            completionQueue = try dma.allocate(entries * 16)
            prpLists = try dma.allocate(entries * listPages * Self.pageSize)
        } catch {
            throw .framework(error)
        }
        sqDoorbell = NVMeDoorbell(region: bar, queue: id, completion: false, stride: doorbellStride)
        cqDoorbell = NVMeDoorbell(region: bar, queue: id, completion: true, stride: doorbellStride)
        state = .allocate(capacity: 1)
        state.initialize(to: State())
        slots = .allocate(capacity: entries)
        slots.initialize(repeating: Slot(), count: entries)
        freeIDs = .allocate(capacity: entries)
        // Ids 0 … entries − 2: a full SQ holds entries − 1 commands.
        for i in 0..<entries - 1 { freeIDs[i] = UInt16(entries - 2 - i) }
        state.pointee.freeCount = entries - 1
    }

    /// Frees the queue memory (the DMA buffers go with the object): the controller no longer
    /// uses the queues by then, as the driver deletes them or disables the controller first.
    deinit {
        slots.deinitialize(count: entries)
        slots.deallocate()
        freeIDs.deallocate()
        state.deallocate()
    }

    /// Commands submitted and not yet completed.
    public var outstanding: Int { entries - 1 - state.pointee.freeCount }
    /// True when another command fits.
    public var canSubmit: Bool { state.pointee.freeCount > 0 }

    // MARK: Submission

    /// Places `command` in the SQ, with PRPs for `range`, and returns its command id. The
    /// controller sees it after ``ring()``. Throws ``NVMeError/queueFull(queue:)`` when every
    /// slot is in use and ``NVMeError/invalidArgument(_:)`` for a range the controller cannot take.
    @inline(__always) @discardableResult
    public func submit(_ command: NVMeCommand, data range: NVMeDataRange? = nil) throws(NVMeError) -> UInt16 {
        guard let range else {
            guard state.pointee.freeCount > 0 else { throw .queueFull(queue: id) }
            var command = command
            return place(&command)
        }
        return try withUnsafePointer(to: range) { (p) throws(NVMeError) in
            try submit(command, segments: UnsafeBufferPointer(start: p, count: 1), mode: .prp)
        }
    }

    /// Places `command` in the SQ with its data in `segments` (each an IOVA range), described
    /// as `mode` says (``NVMeTransferMode/automatic``: PRPs where the segments allow them, an
    /// SGL where they do not and the controller takes SGLs), and returns its command id.
    /// Segments that cannot be described so are refused with ``NVMeError/invalidArgument(_:)``
    /// naming the segment, before anything is submitted. `segments` is read only here.
    @inline(__always) @discardableResult
    public func submit(
        _ command: NVMeCommand, segments: UnsafeBufferPointer<NVMeDataRange>, mode: NVMeTransferMode = .automatic
    ) throws(NVMeError) -> UInt16 {
        guard state.pointee.freeCount > 0 else { throw .queueFull(queue: id) }
        var mode = mode
        if let problem = check(segments, &mode) { throw .invalidArgument(problem) }
        var command = command
        let cid = Int(freeIDs[state.pointee.freeCount - 1])
        setDataPointer(&command, segments, mode, slot: cid)
        return place(&command)
    }

    /// Takes a free command id for `command` and writes it at the SQ tail.
    @inline(__always)
    private func place(_ command: inout NVMeCommand) -> UInt16 {
        let s = state
        s.pointee.freeCount -= 1
        let cid = freeIDs[s.pointee.freeCount]
        command.commandID = cid
        let slot = slots + Int(cid)
        slot.pointee.inUse = true
        slot.pointee.command = command
        slot.pointee.submittedAt = Self.coarseNow()
        slot.pointee.timedOut = false
        slot.pointee.keepCompletion = false
        slot.pointee.request = -1
        slot.pointee.resets = 0
        command.store(to: submissionQueue.bytes.baseAddress! + s.pointee.sqTail * 64)
        s.pointee.sqTail = s.pointee.sqTail + 1 == entries ? 0 : s.pointee.sqTail + 1
        s.pointee.unrung = true
        return cid
    }

    /// Tells the controller about submitted commands: one doorbell write for all of them.
    @inline(__always)
    public func ring() {
        guard state.pointee.unrung else { return }
        state.pointee.unrung = false
        MemoryBarrier.write()
        sqDoorbell.ring(UInt32(state.pointee.sqTail))
    }

    // MARK: Completion

    /// True when the next completion entry has arrived: one load, for a caller that spins.
    @inline(__always)
    public var hasCompletion: Bool {
        let entry = completionQueue.bytes.baseAddress! + state.pointee.cqHead * 16
        return (UInt32.volatileLoad(entry + 12) >> 16) & 1 == state.pointee.phase
    }

    /// Consumes up to `limit` new completion entries, frees their slots and hands each to
    /// `body` (which may submit again), then writes the CQ head doorbell once. Returns how many.
    @inline(__always) @discardableResult
    public func poll(limit: Int = .max, _ body: (NVMeCompletion) -> Void) -> Int {
        let s = state
        let cq = completionQueue.bytes.baseAddress!
        var count = 0
        while count < limit {
            let entry = cq + s.pointee.cqHead * 16
            let dw3 = UInt32.volatileLoad(entry + 12)
            guard (dw3 >> 16) & 1 == s.pointee.phase else { break }
            MemoryBarrier.read()
            let result = UInt32.volatileLoad(entry)
            let dw2 = UInt32.volatileLoad(entry + 8)
            s.pointee.sqHead = Int(dw2 & 0xffff)
            s.pointee.cqHead += 1
            if s.pointee.cqHead == entries {
                s.pointee.cqHead = 0
                s.pointee.phase ^= 1
            }
            count += 1
            let completion = NVMeCompletion(commandID: UInt16(truncatingIfNeeded: dw3), statusField: UInt16(dw3 >> 17), result: result)
            let cid = Int(completion.commandID)
            // A completion for a slot not in use is the controller's error; it is dropped.
            guard cid < entries - 1, slots[cid].inUse else { continue }
            let request = slots[cid].request
            if request >= 0, let mailbox {
                // A retryable failure waits for the owner's tick, then goes again.
                if !completion.succeeded, !slots[cid].timedOut, mailbox.retryLater(request, completion.status) {
                    free(cid)
                    continue
                }
                let outcome = outcome(of: completion, slot: cid)
                free(cid)
                mailbox.complete(request, outcome)
                continue
            }
            if slots[cid].keepCompletion {
                slots[cid].outcome = outcome(of: completion, slot: cid)
                continue
            }
            free(cid)
            body(completion)
        }
        if count > 0 { cqDoorbell.ring(UInt32(s.pointee.cqHead)) }
        return count
    }

    @inline(__always)
    func free(_ cid: Int) {
        slots[cid].inUse = false
        freeIDs[state.pointee.freeCount] = UInt16(cid)
        state.pointee.freeCount += 1
    }

    /// The result of `completion`, or the error naming its command and status (a timeout if
    /// the driver had given up on it).
    func outcome(of completion: NVMeCompletion, slot cid: Int) -> Result<UInt32, NVMeError> {
        if completion.succeeded { return .success(completion.result) }
        let name = slots[cid].command.name(admin: id == 0)
        if slots[cid].timedOut {
            return .failure(
                .timeout(
                    command: name, milliseconds: Int((Self.coarseNow() &- slots[cid].submittedAt) / 1_000_000),
                    recovery: "the driver aborted it (\(completion.status))"))
        }
        return .failure(.failed(command: name, status: completion.status))
    }

    /// The outcome kept for `cid` (see ``keepCompletion(_:)``), freeing its slot once there is one.
    func takeOutcome(_ cid: UInt16) -> Result<UInt32, NVMeError>? {
        guard let outcome = slots[Int(cid)].outcome else { return nil }
        slots[Int(cid)].outcome = nil
        free(Int(cid))
        return outcome
    }

    /// Marks `cid`'s completion to be kept for ``takeOutcome(_:)``.
    func keepCompletion(_ cid: UInt16) { slots[Int(cid)].keepCompletion = true }

    /// Sets the mailbox record completed when `cid` completes.
    @inline(__always)
    func setRequest(_ cid: UInt16, _ request: Int) { slots[Int(cid)].request = request }

    /// Commands outstanding for longer than `timeout` nanoseconds and not yet given up on;
    /// each is marked timed out and handed to `body`.
    func expire(olderThan timeout: UInt64, _ body: (UInt16, NVMeCommand) -> Void) {
        let now = Self.coarseNow()
        for cid in 0..<entries - 1 where slots[cid].inUse && !slots[cid].timedOut && now &- slots[cid].submittedAt > timeout {
            slots[cid].timedOut = true
            body(UInt16(cid), slots[cid].command)
        }
    }

    /// Frees every outstanding command, completing its request with `error`. For a controller
    /// that was reset: its queues are gone. A command submitted directly (by a frontend on the owner thread) is freed and handed to
    /// `direct` as a completion with an Internal Error status, so its submitter learns it failed.
    func failAll(_ error: NVMeError, direct: (NVMeCompletion) -> Void = { _ in }) {
        for cid in 0..<entries - 1 where slots[cid].inUse { fail(cid, error, direct: direct) }
    }

    /// Ends outstanding command `cid` with `error`: its request fails, a kept outcome is set, or
    /// a directly submitted command's failure goes to `direct`.
    private func fail(_ cid: Int, _ error: NVMeError, direct: (NVMeCompletion) -> Void) {
        if slots[cid].request >= 0, let mailbox {
            let request = slots[cid].request
            free(cid)
            mailbox.complete(request, .failure(error))
        } else if slots[cid].keepCompletion {
            if slots[cid].outcome == nil { slots[cid].outcome = .failure(error) }
        } else {
            free(cid)
            direct(NVMeCompletion(commandID: UInt16(cid), statusField: Self.internalError, result: 0))
        }
    }

    // MARK: Reset in place

    /// Empties both rings (the controller was disabled, so it holds neither any more) and
    /// zeroes the CQ, as a newly created queue must be; outstanding slots stay as they were.
    func resetRings() {
        completionQueue.bytes.initializeMemory(as: UInt8.self, repeating: 0)
        state.pointee.sqTail = 0
        state.pointee.sqHead = 0
        state.pointee.cqHead = 0
        state.pointee.phase = 1
        state.pointee.unrung = false
    }

    /// After ``resetRings()`` and the queues' re-creation: each outstanding command that
    /// `resubmit` accepts goes into the SQ again with its command id and PRPs (its PRP list
    /// page is its slot's) and a fresh deadline; the others are freed, their requests failed
    /// with the error `failure` gives. The caller rings.
    func resubmitOutstanding(
        _ resubmit: (NVMeCommand, _ resets: Int) -> Bool, failure: (NVMeCommand, _ resets: Int) -> NVMeError,
        direct: (NVMeCompletion) -> Void = { _ in }
    ) {
        for cid in 0..<entries - 1 where slots[cid].inUse {
            let command = slots[cid].command
            if resubmit(command, slots[cid].resets) {
                slots[cid].resets += 1
                slots[cid].timedOut = false
                slots[cid].submittedAt = Self.coarseNow()
                command.store(to: submissionQueue.bytes.baseAddress! + state.pointee.sqTail * 64)
                state.pointee.sqTail = state.pointee.sqTail + 1 == entries ? 0 : state.pointee.sqTail + 1
                state.pointee.unrung = true
                continue
            }
            fail(cid, failure(command, slots[cid].resets), direct: direct)
        }
    }

    /// Generic command status 06h, Internal Error (SCT 0).
    static let internalError: UInt16 = 0x06

    /// The time base for command deadlines: cheap, 1–4 ms granular.
    @inline(__always)
    static func coarseNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
