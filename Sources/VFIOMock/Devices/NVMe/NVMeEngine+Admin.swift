/// Admin commands: Identify, queue creation and deletion, Abort, Set and Get Features.
extension NVMeEngine {
    enum AdminOpcode {
        static let deleteSQ: UInt8 = 0x00, createSQ: UInt8 = 0x01, deleteCQ: UInt8 = 0x04, createCQ: UInt8 = 0x05
        static let identify: UInt8 = 0x06, abort: UInt8 = 0x08, setFeatures: UInt8 = 0x09, getFeatures: UInt8 = 0x0a
    }
    /// Feature 0x07: Number of Queues.
    static let numberOfQueuesFeature: UInt32 = 0x07
    /// Feature 0x16: Host Behavior Support.
    static let hostBehaviorFeature: UInt32 = 0x16

    mutating func executeAdmin(_ opcode: UInt8) -> (status: UInt16, result: UInt32) {
        switch opcode {
        case AdminOpcode.identify: (identify(), 0)
        case AdminOpcode.createCQ: (createCompletionQueue(), 0)
        case AdminOpcode.createSQ: (createSubmissionQueue(), 0)
        case AdminOpcode.deleteSQ: (deleteSubmissionQueue(), 0)
        case AdminOpcode.deleteCQ: (deleteCompletionQueue(), 0)
        case AdminOpcode.abort: abort()
        case AdminOpcode.setFeatures, AdminOpcode.getFeatures: features(set: opcode == AdminOpcode.setFeatures)
        case Self.getLogPageOpcode: (getLogPage(), 0)
        default: (NVMeStatusCode.invalidOpcode, 0)
        }
    }

    private var queueCountResult: UInt32 { UInt32(options.ioQueuePairs - 1) | UInt32(options.ioQueuePairs - 1) << 16 }

    private mutating func features(set: Bool) -> (UInt16, UInt32) {
        if dword(10) & 0xff == Self.asyncEventConfigurationFeature { return eventConfigurationFeature(set: set) }
        if dword(10) & 0xff == Self.hostBehaviorFeature { return (hostBehaviorFeature(set: set), 0) }
        guard dword(10) & 0xff == Self.numberOfQueuesFeature else { return (NVMeStatusCode.invalidField, 0) }
        if set {
            // 0xffff is reserved in either half.
            guard dword(11) & 0xffff != 0xffff, dword(11) >> 16 != 0xffff else { return (NVMeStatusCode.invalidField, 0) }
            numberOfQueuesSet = true
        }
        return (NVMeStatusCode.success, queueCountResult)
    }

    private mutating func identify() -> UInt16 {
        let cns = dword(10) & 0xff
        let page = scratch
        page.initializeMemory(as: UInt8.self, repeating: 0)
        switch cns {
        case 0x00:
            guard namespaceID >= 1, Int(namespaceID) <= namespaces.count else { return NVMeStatusCode.invalidNamespace }
            // An inactive (detached) namespace is identified as zeroes.
            guard let ns = namespace(namespaceID) else { break }
            page.storeBytes(of: ns.blockCount, toByteOffset: 0, as: UInt64.self)  // NSZE
            page.storeBytes(of: ns.blockCount, toByteOffset: 8, as: UInt64.self)  // NCAP
            page.storeBytes(of: ns.blockCount, toByteOffset: 16, as: UInt64.self)  // NUSE
            page.storeBytes(of: options.deallocateFeatures, toByteOffset: 33, as: UInt8.self)  // DLFEAT
            // LBAF0: the block size without metadata; a namespace with metadata also offers, and
            // uses, LBAF1 with it (NLBAF 1, FLBAS 1: metadata in a separate buffer).
            let lbads = UInt32(ns.blockSize.trailingZeroBitCount) << 16
            page.storeBytes(of: lbads, toByteOffset: 128, as: UInt32.self)
            if ns.metadataSize > 0 {
                page.storeBytes(of: UInt8(1), toByteOffset: 25, as: UInt8.self)  // NLBAF (0's based)
                page.storeBytes(of: UInt8(1), toByteOffset: 26, as: UInt8.self)  // FLBAS
                page.storeBytes(of: lbads | UInt32(ns.metadataSize), toByteOffset: 132, as: UInt32.self)
            }
        case 0x01:
            page.storeBytes(of: UInt16(0x1b36), toByteOffset: 0, as: UInt16.self)  // VID
            page.storeBytes(of: UInt16(0x1af4), toByteOffset: 2, as: UInt16.self)  // SSVID
            storeASCII(options.serial, at: 4, width: 20, in: page)
            storeASCII(options.model, at: 24, width: 40, in: page)
            storeASCII(options.firmware, at: 64, width: 8, in: page)
            page.storeBytes(of: options.maxDataTransfer, toByteOffset: 77, as: UInt8.self)  // MDTS
            page.storeBytes(of: UInt32(0x0001_0400), toByteOffset: 80, as: UInt32.self)  // VER
            page.storeBytes(of: UInt32(1 << 8), toByteOffset: 92, as: UInt32.self)  // OAES: namespace attribute notices
            for (i, crdt) in options.commandRetryDelayTimes.prefix(3).enumerated() {
                page.storeBytes(of: crdt, toByteOffset: 128 + 2 * i, as: UInt16.self)  // CRDT1–3
            }
            page.storeBytes(of: UInt8(NVMeEngineHealth.eventRequestLimit - 1), toByteOffset: 259, as: UInt8.self)  // AERL
            page.storeBytes(of: UInt8(NVMeEngineHealth.errorLogEntries - 1), toByteOffset: 262, as: UInt8.self)  // ELPE
            page.storeBytes(of: UInt8(0x66), toByteOffset: 512, as: UInt8.self)  // SQES: 64 bytes
            page.storeBytes(of: UInt8(0x44), toByteOffset: 513, as: UInt8.self)  // CQES: 16 bytes
            page.storeBytes(of: UInt16(options.maxQueueEntries), toByteOffset: 514, as: UInt16.self)  // MAXCMD
            page.storeBytes(of: UInt32(namespaces.count), toByteOffset: 516, as: UInt32.self)  // NN
            page.storeBytes(of: options.optionalCommands, toByteOffset: 520, as: UInt16.self)  // ONCS
            page.storeBytes(of: UInt8(options.volatileWriteCache ? 1 : 0), toByteOffset: 525, as: UInt8.self)  // VWC
            page.storeBytes(of: options.sglSupport, toByteOffset: 536, as: UInt32.self)  // SGLS
        case 0x02:
            // Up to 1024 active NSIDs above the one given, ascending; FFFFFFFEh and up are invalid.
            guard namespaceID < 0xffff_fffe else { return NVMeStatusCode.invalidNamespace }
            var slot = 0
            for id in 1...max(1, namespaces.count) where slot < 1024 && id <= namespaces.count && UInt32(id) > namespaceID {
                guard namespace(UInt32(id)) != nil else { continue }
                page.storeBytes(of: UInt32(id), toByteOffset: 4 * slot, as: UInt32.self)
                slot += 1
            }
        case 0x06:
            // CSI in CDW11 bits 31:24: only the NVM command set (0) has a structure here.
            guard let limits = options.nvmLimits, dword(11) >> 24 == 0 else { return NVMeStatusCode.invalidField }
            page.storeBytes(of: limits.writeZeroesSize, toByteOffset: 1, as: UInt8.self)  // WZSL
            page.storeBytes(of: limits.ranges, toByteOffset: 3, as: UInt8.self)  // DMRL
            page.storeBytes(of: limits.rangeSize, toByteOffset: 4, as: UInt32.self)  // DMRSL
            page.storeBytes(of: limits.size, toByteOffset: 8, as: UInt64.self)  // DMSL
        default:
            return NVMeStatusCode.invalidField
        }
        return transfer(page, prp1: prp1, prp2: prp2, toHost: true)
    }

    private func storeASCII(_ text: String, at offset: Int, width: Int, in page: UnsafeMutableRawBufferPointer) {
        let bytes = Array(text.utf8.prefix(width))
        for i in 0..<width { page[offset + i] = i < bytes.count ? bytes[i] : 0x20 }
    }

    /// Namespace `id` when it is attached (active).
    func namespace(_ id: UInt32) -> NVMeNamespace? {
        id >= 1 && Int(id) <= namespaces.count && !detached.contains(id) ? namespaces[Int(id) - 1] : nil
    }

    /// QID in CDW10 bits 15:0 and a valid I/O queue number; QSIZE (0's based) in bits 31:16.
    private var queueID: Int { Int(dword(10) & 0xffff) }
    private var queueSize: Int { Int(dword(10) >> 16) + 1 }

    private mutating func createCompletionQueue() -> UInt16 {
        let q = queueID, size = queueSize, flags = dword(11)
        let vector = Int(flags >> 16)
        guard q >= 1, q < completionQueues.count, completionQueues[q] == nil else { return NVMeStatusCode.invalidQueueID }
        guard size >= 2, size <= options.maxQueueEntries else { return NVMeStatusCode.invalidQueueSize }
        guard flags & 1 != 0 else { return NVMeStatusCode.invalidField }  // CAP.CQR: physically contiguous only
        guard prp1 & UInt64(Self.pageSize - 1) == 0 else { return NVMeStatusCode.invalidPRPOffset }
        guard vector < options.ioQueuePairs + 1 else { return NVMeStatusCode.invalidInterruptVector }
        completionQueues[q] = CompletionQueue(base: prp1, size: size, vector: vector, interrupts: flags & 2 != 0)
        // A new queue starts at 0, whatever the host wrote to its doorbell while it did not exist.
        store32(doorbell(queue: q, completion: true), 0)
        return NVMeStatusCode.success
    }

    private mutating func createSubmissionQueue() -> UInt16 {
        let q = queueID, size = queueSize, flags = dword(11)
        let cq = Int(flags >> 16)
        guard q >= 1, q < submissionQueues.count, submissionQueues[q] == nil else { return NVMeStatusCode.invalidQueueID }
        guard cq >= 1, cq < completionQueues.count, completionQueues[cq] != nil else { return NVMeStatusCode.invalidCompletionQueue }
        guard size >= 2, size <= options.maxQueueEntries else { return NVMeStatusCode.invalidQueueSize }
        guard flags & 1 != 0 else { return NVMeStatusCode.invalidField }
        guard prp1 & UInt64(Self.pageSize - 1) == 0 else { return NVMeStatusCode.invalidPRPOffset }
        submissionQueues[q] = SubmissionQueue(base: prp1, size: size, completionQueue: cq)
        store32(doorbell(queue: q, completion: false), 0)
        return NVMeStatusCode.success
    }

    /// Held commands of the queue complete as aborted by the deletion, then it goes.
    private mutating func deleteSubmissionQueue() -> UInt16 {
        let q = queueID
        guard q >= 1, q < submissionQueues.count, let sq = submissionQueues[q] else { return NVMeStatusCode.invalidQueueID }
        for h in held where h.queue == q {
            post(to: sq.completionQueue, from: q, commandID: h.commandID, status: NVMeStatusCode.abortedBySQDeletion, result: 0)
        }
        held.removeAll { $0.queue == q }
        submissionQueues[q] = nil
        store32(doorbell(queue: q, completion: false), 0)
        return NVMeStatusCode.success
    }

    private mutating func deleteCompletionQueue() -> UInt16 {
        let q = queueID
        guard q >= 1, q < completionQueues.count, completionQueues[q] != nil else { return NVMeStatusCode.invalidQueueID }
        guard !submissionQueues.contains(where: { $0?.completionQueue == q }) else { return NVMeStatusCode.invalidQueueDeletion }
        completionQueues[q] = nil
        store32(doorbell(queue: q, completion: true), 0)
        return NVMeStatusCode.success
    }

    /// Abort: SQID in CDW10 bits 15:0, CID in bits 31:16. A held command completes with
    /// Command Abort Requested and the result's bit 0 is 0; otherwise bit 0 is 1 (not aborted).
    private mutating func abort() -> (UInt16, UInt32) {
        let q = Int(dword(10) & 0xffff), id = UInt16(dword(10) >> 16)
        guard let index = held.firstIndex(where: { $0.queue == q && $0.commandID == id }),
            let sq = submissionQueues[q]
        else { return (NVMeStatusCode.success, 1) }
        held.remove(at: index)
        post(to: sq.completionQueue, from: q, commandID: id, status: NVMeStatusCode.abortRequested, result: 0)
        return (NVMeStatusCode.success, 0)
    }
}
