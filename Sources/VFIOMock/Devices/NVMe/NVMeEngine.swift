import VFIOKit

/// The state machine of a simulated NVMe controller: register file, queues and command
/// execution. It runs under the controller's lock, on whichever thread services it.
///
/// Register offsets and field layouts follow the NVMe base specification (1.4): CAP 0x00,
/// VS 0x08, CC 0x14, CSTS 0x1c, AQA 0x24, ASQ 0x28, ACQ 0x30; doorbells from 0x1000, SQ y's
/// tail at 0x1000 + 2y·(4 << CAP.DSTRD) and CQ y's head one stride after it.
struct NVMeEngine {
    enum Offset {
        static let cap = 0x00, vs = 0x08, intms = 0x0c, intmc = 0x10, cc = 0x14, csts = 0x1c
        static let aqa = 0x24, asq = 0x28, acq = 0x30, doorbells = 0x1000
    }
    /// 4 KiB: CAP.MPSMIN = CAP.MPSMAX = 0.
    static let pageSize = 4096

    struct SubmissionQueue {
        var base: UInt64
        var size: Int
        var head = 0
        var tail = 0
        var completionQueue: Int
    }

    struct CompletionQueue {
        var base: UInt64
        var size: Int
        var head = 0
        var tail = 0
        var phase: UInt32 = 1
        var vector: Int
        var interrupts: Bool
        var interruptDue = false
    }

    /// A command the controller fetched but will not complete unless aborted (fault injection).
    struct HeldCommand {
        var queue: Int
        var commandID: UInt16
    }

    let options: NVMeController.Options
    let namespaces: [NVMeNamespace]
    var bus: DeviceBus?
    /// The register file: the BAR's own memory on the threaded controller, private otherwise.
    var registers: UnsafeMutableRawPointer?
    /// Keeps a shared-memory BAR behind ``registers`` mapped while the controller thread runs.
    var registerMemory: BARMemory?
    /// CC as last acted upon.
    var cc: UInt32 = 0
    var csts: UInt32 = 0
    var submissionQueues: [SubmissionQueue?]
    var completionQueues: [CompletionQueue?]
    var held: [HeldCommand] = []
    /// Commands still to hold, and which: nil opcode holds any; `admin` picks the queue kind.
    /// Commands to hold, each kind in the order they were asked for.
    var stalls: [(count: Int, admin: Bool, opcode: UInt8?)] = []
    var numberOfQueuesSet = false
    /// Log pages, asynchronous events and injected I/O faults.
    var health = NVMeEngineHealth()
    /// NSIDs detached from the controller: inactive, until attached again.
    var detached: Set<UInt32> = []
    /// 64-byte command and one page of PRP list, reused by every command.
    let command = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: NVMeEngine.pageSize, alignment: 8)
    /// The host's data of a Compare or a Dataset Management range list; grown, never shrunk.
    var hostData = UnsafeMutableRawBufferPointer.allocate(byteCount: NVMeEngine.pageSize, alignment: 8)

    init(options: NVMeController.Options, namespaces: [NVMeNamespace]) {
        self.options = options
        self.namespaces = namespaces
        submissionQueues = Array(repeating: nil, count: options.ioQueuePairs + 1)
        completionQueues = Array(repeating: nil, count: options.ioQueuePairs + 1)
    }

    func deallocate() {
        command.deallocate()
        scratch.deallocate()
        hostData.deallocate()
    }

    // MARK: Register file

    var capabilities: UInt64 {
        UInt64(options.maxQueueEntries - 1) | 1 << 16 /* CQR */ | UInt64(options.readyTimeout) << 24
            | UInt64(options.doorbellStride) << 32 | 1 << 37 /* CSS: NVM */
    }

    func load32(_ offset: Int) -> UInt32 { registers.map { UInt32.volatileLoad($0 + offset) } ?? ~0 }
    func load64(_ offset: Int) -> UInt64 { registers.map { UInt64.volatileLoad($0 + offset) } ?? ~0 }
    func store32(_ offset: Int, _ value: UInt32) { registers.map { UInt32.volatileStore($0 + offset, value) } }
    func store64(_ offset: Int, _ value: UInt64) { registers.map { UInt64.volatileStore($0 + offset, value) } }

    func doorbell(queue: Int, completion: Bool) -> Int {
        Offset.doorbells + (2 * queue + (completion ? 1 : 0)) * (4 << options.doorbellStride)
    }
    static func doorbellAreaSize(_ options: NVMeController.Options) -> Int {
        2 * (options.ioQueuePairs + 1) * (4 << options.doorbellStride)
    }

    /// Power-on state: every register zero except CAP and VS; no queues.
    mutating func powerOn() {
        guard let registers else { return }
        registers.initializeMemory(as: UInt8.self, repeating: 0, count: Offset.doorbells + Self.doorbellAreaSize(options))
        store64(Offset.cap, capabilities)
        store32(Offset.vs, 0x0001_0400)
        cc = 0
        csts = 0
        dropQueues()
    }

    /// Queues, held commands and features set since the controller was enabled go (a
    /// controller level reset).
    private mutating func dropQueues() {
        health.advancedCommandRetry = false
        for i in submissionQueues.indices { submissionQueues[i] = nil }
        for i in completionQueues.indices { completionQueues[i] = nil }
        held.removeAll()
        health.eventRequests.removeAll()
        numberOfQueuesSet = false
        if let registers {
            (registers + Offset.doorbells).initializeMemory(as: UInt8.self, repeating: 0, count: Self.doorbellAreaSize(options))
        }
    }

    /// A register write through the trapped BAR; returns false for a register software may not write.
    mutating func write(offset: Int, width: Int, value: UInt64) -> Bool {
        if health.removed { return false }
        switch (offset, width) {
        case (Offset.asq, 8), (Offset.acq, 8): store64(offset, value)
        case (Offset.intms, 4), (Offset.intmc, 4), (Offset.cc, 4), (Offset.aqa, 4), (Offset.asq, 4), (Offset.asq + 4, 4),
            (Offset.acq, 4), (Offset.acq + 4, 4):
            store32(offset, UInt32(truncatingIfNeeded: value))
        case let (o, 4) where o >= Offset.doorbells && o < Offset.doorbells + Self.doorbellAreaSize(options):
            store32(offset, UInt32(truncatingIfNeeded: value))
        default: return false
        }
        return true
    }

    mutating func setFatal() {
        csts |= 2
        store32(Offset.csts, csts)
    }

    var isFatal: Bool { csts & 2 != 0 }

    // MARK: Servicing

    /// Acts on what software wrote since the last call: CC changes, then doorbells. Returns
    /// true when anything happened, and the MSI-X vectors to signal in `interrupts`.
    mutating func service(interrupts: inout [Int]) -> Bool {
        advanceInjectedReset()
        if health.removed { return false }
        var worked = false
        let newCC = load32(Offset.cc)
        if newCC != cc {
            configure(newCC)
            worked = true
        }
        guard csts & 1 != 0, !isFatal else { return worked }
        for q in completionQueues.indices where completionQueues[q] != nil {
            let head = Int(load32(doorbell(queue: q, completion: true)))
            if head != completionQueues[q]!.head, head < completionQueues[q]!.size {
                completionQueues[q]!.head = head
                worked = true
            }
        }
        for q in submissionQueues.indices where submissionQueues[q] != nil {
            let tail = Int(load32(doorbell(queue: q, completion: false)))
            if tail != submissionQueues[q]!.tail, tail < submissionQueues[q]!.size { submissionQueues[q]!.tail = tail }
            if submissionQueues[q].map({ $0.head != $0.tail }) ?? false, process(queue: q) { worked = true }
            if isFatal { return true }
        }
        interrupts += takeDueInterrupts()
        return worked
    }

    private mutating func configure(_ new: UInt32) {
        let old = cc
        cc = new
        let enabled = new & 1 != 0
        if old & 1 == 0, enabled { enable() }
        if old & 1 != 0, !enabled {
            dropQueues()
            // A permanently failed controller keeps CFS through the reset.
            csts = health.permanent ? 2 : 0
        }
        let shutdown = (new >> 14) & 3 != 0
        if shutdown, (old >> 14) & 3 == 0 {
            // Shutdown: I/O queues go away, then SHST reports complete (0b10).
            for q in 1..<submissionQueues.count {
                submissionQueues[q] = nil
                completionQueues[q] = nil
            }
            held.removeAll { $0.queue != 0 }
            csts = (csts & ~0xc) | 0x8
        } else if !shutdown {
            csts &= ~0xc
        }
        store32(Offset.csts, csts)
    }

    /// CC.EN 0 → 1: checks the admin queue set-up and page size; RDY stays 0 if it is wrong, or
    /// until an injected reset is over (``advanceInjectedReset()`` comes back then).
    mutating func enable() {
        let aqa = load32(Offset.aqa)
        let asq = load64(Offset.asq), acq = load64(Offset.acq)
        let sqSize = Int(aqa & 0xfff) + 1, cqSize = Int((aqa >> 16) & 0xfff) + 1
        let pageMask = UInt64(Self.pageSize - 1)
        if let notBefore = health.readyNotBefore, ContinuousClock.now < notBefore { return }
        guard !health.permanent, (cc >> 7) & 0xf == 0, (cc >> 4) & 7 == 0, sqSize >= 2, cqSize >= 2,
            asq != 0, acq != 0, asq & pageMask == 0, acq & pageMask == 0
        else { return }
        submissionQueues[0] = SubmissionQueue(base: asq, size: sqSize, completionQueue: 0)
        completionQueues[0] = CompletionQueue(base: acq, size: cqSize, vector: 0, interrupts: true)
        csts |= 1
    }

    /// Fetches and executes commands of SQ `q` until it is empty or its CQ is full.
    private mutating func process(queue q: Int) -> Bool {
        var worked = false
        while let sq = submissionQueues[q], sq.head != sq.tail {
            guard let cq = completionQueues[sq.completionQueue], (cq.tail + 1) % cq.size != cq.head else { break }
            guard let bus, bus.dmaRead(iova: sq.base + UInt64(sq.head * 64), into: command) else {
                setFatal()
                return true
            }
            submissionQueues[q]!.head = (sq.head + 1) % sq.size
            worked = true
            let opcode = command.load(as: UInt8.self)
            let commandID = command.load(fromByteOffset: 2, as: UInt16.self)
            if q == 0, opcode == Self.asyncEventRequestOpcode {
                acceptEventRequest(commandID)
                continue
            }
            if let k = stalls.firstIndex(where: { $0.admin == (q == 0) && ($0.opcode.map { $0 == opcode } ?? true) }) {
                stalls[k].count -= 1
                if stalls[k].count == 0 { stalls.remove(at: k) }
                held.append(HeldCommand(queue: q, commandID: commandID))
                continue
            }
            if q != 0, let fault = takeFault(opcode) {
                guard case let .status(status, doNotRetry) = fault else {
                    // Fatal mid-I/O: this command was fetched and is never completed.
                    setFatal()
                    return true
                }
                post(to: sq.completionQueue, from: q, commandID: commandID, status: status, result: 0, doNotRetry: doNotRetry)
                continue
            }
            let (status, result) = q == 0 ? executeAdmin(opcode) : executeIO(opcode)
            if q != 0, status == NVMeStatusCode.success { countIO(opcode) }
            post(to: sq.completionQueue, from: q, commandID: commandID, status: status, result: result)
            if isFatal { return true }
        }
        return worked
    }

    /// Writes a completion entry: DW0 result, DW2 SQ head and SQ id, then DW3 with the
    /// command id, phase and status, last, so that a reader who sees the new phase sees it all.
    /// An error sets DNR unless `doNotRetry` says otherwise, and is kept in the error log.
    mutating func post(to cqID: Int, from sqID: Int, commandID: UInt16, status: UInt16, result: UInt32, doNotRetry: Bool? = nil) {
        guard let cq = completionQueues[cqID], let bus else { return }
        let sqHead = UInt32(submissionQueues[sqID]?.head ?? 0)
        let dnr: UInt32 = doNotRetry ?? (status != 0) ? 1 << 14 : 0
        if status != 0 { recordError(queue: sqID, commandID: commandID, status: status | UInt16(dnr)) }
        var front: (UInt32, UInt32, UInt32) = (result, 0, sqHead | UInt32(sqID) << 16)
        var last = UInt32(commandID) | cq.phase << 16 | (UInt32(status) | dnr) << 17
        let entry = cq.base + UInt64(cq.tail * 16)
        let ok =
            withUnsafeBytes(of: &front) { bus.dmaWrite(iova: entry, from: $0) }
            && withUnsafeBytes(of: &last) { bus.dmaWrite(iova: entry + 12, from: $0) }
        guard ok else {
            setFatal()
            return
        }
        completionQueues[cqID]!.tail = (cq.tail + 1) % cq.size
        if cq.tail + 1 == cq.size { completionQueues[cqID]!.phase ^= 1 }
        if cq.interrupts { completionQueues[cqID]!.interruptDue = true }
    }

    // MARK: Command fields

    func dword(_ index: Int) -> UInt32 { command.load(fromByteOffset: 4 * index, as: UInt32.self) }
    var namespaceID: UInt32 { dword(1) }
    var prp1: UInt64 { command.load(fromByteOffset: 24, as: UInt64.self) }
    var prp2: UInt64 { command.load(fromByteOffset: 32, as: UInt64.self) }
}

/// Status values: status code type in bits 10:8, status code in bits 7:0.
enum NVMeStatusCode {
    static let success: UInt16 = 0x000
    static let invalidOpcode: UInt16 = 0x001
    static let invalidField: UInt16 = 0x002
    static let dataTransferError: UInt16 = 0x004
    static let abortRequested: UInt16 = 0x007
    static let abortedBySQDeletion: UInt16 = 0x008
    static let invalidNamespace: UInt16 = 0x00b
    static let invalidSGLDescriptorCount: UInt16 = 0x00e
    static let dataSGLLengthInvalid: UInt16 = 0x00f
    static let sglDescriptorTypeInvalid: UInt16 = 0x011
    static let invalidPRPOffset: UInt16 = 0x013
    static let lbaOutOfRange: UInt16 = 0x080
    static let compareFailure: UInt16 = 0x285
    static let invalidCompletionQueue: UInt16 = 0x100
    static let invalidQueueID: UInt16 = 0x101
    static let invalidQueueSize: UInt16 = 0x102
    static let invalidInterruptVector: UInt16 = 0x108
    static let invalidQueueDeletion: UInt16 = 0x10c
}
