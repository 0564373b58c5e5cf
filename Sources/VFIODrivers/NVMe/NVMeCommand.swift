/// One 64-byte submission queue entry (NVMe base specification, figure "Common Command
/// Format"): opcode, PSDT (bits 15:14) and command id in CDW0, NSID, the data pointer at byte
/// 24 (PRP1 and PRP2, or SGL1's 16 bytes), CDW10–15.
public struct NVMeCommand: Sendable, Equatable {
    public var opcode: UInt8
    /// PSDT: 0 for PRPs, ``sglData`` for an SGL in the data pointer.
    public var dataPointerType: UInt8 = 0
    /// Set by the queue when the command is submitted.
    public var commandID: UInt16 = 0
    public var namespaceID: UInt32 = 0
    public var prp1: UInt64 = 0
    public var prp2: UInt64 = 0
    public var cdw10: UInt32 = 0
    public var cdw11: UInt32 = 0
    public var cdw12: UInt32 = 0
    public var cdw13: UInt32 = 0
    public var cdw14: UInt32 = 0
    public var cdw15: UInt32 = 0

    public init(opcode: UInt8) { self.opcode = opcode }

    /// Writes the entry at `slot` (64 bytes, 8-byte aligned).
    @inline(__always)
    func store(to slot: UnsafeMutableRawPointer) {
        slot.storeBytes(of: UInt32(opcode) | UInt32(dataPointerType & 3) << 14 | UInt32(commandID) << 16, as: UInt32.self)
        slot.storeBytes(of: namespaceID, toByteOffset: 4, as: UInt32.self)
        slot.storeBytes(of: UInt64(0), toByteOffset: 8, as: UInt64.self)
        slot.storeBytes(of: UInt64(0), toByteOffset: 16, as: UInt64.self)
        slot.storeBytes(of: prp1, toByteOffset: 24, as: UInt64.self)
        slot.storeBytes(of: prp2, toByteOffset: 32, as: UInt64.self)
        slot.storeBytes(of: UInt64(cdw10) | UInt64(cdw11) << 32, toByteOffset: 40, as: UInt64.self)
        slot.storeBytes(of: UInt64(cdw12) | UInt64(cdw13) << 32, toByteOffset: 48, as: UInt64.self)
        slot.storeBytes(of: UInt64(cdw14) | UInt64(cdw15) << 32, toByteOffset: 56, as: UInt64.self)
    }

    /// A short name for messages.
    public func name(admin: Bool) -> String {
        if admin {
            switch opcode {
            case 0x00: return "Delete I/O Submission Queue"
            case 0x01: return "Create I/O Submission Queue"
            case 0x02: return "Get Log Page (LID 0x\(String(cdw10 & 0xff, radix: 16)))"
            case 0x04: return "Delete I/O Completion Queue"
            case 0x05: return "Create I/O Completion Queue"
            case 0x06: return "Identify (CNS \(cdw10 & 0xff))"
            case 0x08: return "Abort"
            case 0x09: return "Set Features (FID 0x\(String(cdw10 & 0xff, radix: 16)))"
            case 0x0a: return "Get Features (FID 0x\(String(cdw10 & 0xff, radix: 16)))"
            case 0x0c: return "Asynchronous Event Request"
            default: return "admin opcode 0x\(String(opcode, radix: 16))"
            }
        }
        let range = "NSID \(namespaceID), LBA \(UInt64(cdw11) << 32 | UInt64(cdw10)), \((cdw12 & 0xffff) + 1) blocks"
        switch opcode {
        case Opcode.flush: return "Flush (NSID \(namespaceID))"
        case Opcode.write: return cdw12 & Self.forceUnitAccess != 0 ? "Write FUA (\(range))" : "Write (\(range))"
        case Opcode.read: return "Read (\(range))"
        case Opcode.compare: return "Compare (\(range))"
        case Opcode.writeZeroes: return "Write Zeroes (\(range))"
        case Opcode.datasetManagement: return "Dataset Management (NSID \(namespaceID), \((cdw10 & 0xff) + 1) ranges)"
        default: return "I/O opcode 0x\(String(opcode, radix: 16))"
        }
    }

    public enum Opcode {
        public static let flush: UInt8 = 0x00, write: UInt8 = 0x01, read: UInt8 = 0x02, compare: UInt8 = 0x05
        public static let writeZeroes: UInt8 = 0x08, datasetManagement: UInt8 = 0x09
    }

    /// PSDT 01b: the data pointer is SGL1, a descriptor (address in bytes 7:0 of it, length in
    /// 11:8, identifier in 15: type in bits 7:4).
    public static let sglData: UInt8 = 1
    /// SGL descriptor types.
    public static let sglDataBlock: UInt8 = 0x0, sglSegment: UInt8 = 0x2, sglLastSegment: UInt8 = 0x3

    /// CDW12 bit 30 of Write and Write Zeroes: Force Unit Access.
    public static let forceUnitAccess: UInt32 = 1 << 30
    /// CDW12 bit 25 of Write Zeroes: Deallocate.
    public static let deallocateBit: UInt32 = 1 << 25

    public enum AdminOpcode {
        public static let deleteSQ: UInt8 = 0x00, createSQ: UInt8 = 0x01, deleteCQ: UInt8 = 0x04, createCQ: UInt8 = 0x05
        public static let identify: UInt8 = 0x06, abort: UInt8 = 0x08, setFeatures: UInt8 = 0x09, getFeatures: UInt8 = 0x0a
    }

    // MARK: Admin commands

    /// Identify: CNS 0 namespace `namespaceID`, 1 controller, 2 active namespace list.
    public static func identify(cns: UInt32, namespaceID: UInt32 = 0, page: UInt64) -> NVMeCommand {
        var c = NVMeCommand(opcode: AdminOpcode.identify)
        c.namespaceID = namespaceID
        c.prp1 = page
        c.cdw10 = cns
        return c
    }

    /// Create I/O Completion Queue: physically contiguous, interrupts on `vector` or none.
    public static func createCompletionQueue(id: Int, entries: Int, memory: UInt64, vector: Int?) -> NVMeCommand {
        var c = NVMeCommand(opcode: AdminOpcode.createCQ)
        c.prp1 = memory
        c.cdw10 = UInt32(id) | UInt32(entries - 1) << 16
        c.cdw11 = 1 | (vector != nil ? 2 : 0) | UInt32(vector ?? 0) << 16
        return c
    }

    /// Create I/O Submission Queue: physically contiguous, completing to CQ `completionQueue`.
    public static func createSubmissionQueue(id: Int, entries: Int, memory: UInt64, completionQueue: Int) -> NVMeCommand {
        var c = NVMeCommand(opcode: AdminOpcode.createSQ)
        c.prp1 = memory
        c.cdw10 = UInt32(id) | UInt32(entries - 1) << 16
        c.cdw11 = 1 | UInt32(completionQueue) << 16
        return c
    }

    public static func deleteQueue(id: Int, submission: Bool) -> NVMeCommand {
        var c = NVMeCommand(opcode: submission ? AdminOpcode.deleteSQ : AdminOpcode.deleteCQ)
        c.cdw10 = UInt32(id)
        return c
    }

    public static func abort(queue: Int, commandID: UInt16) -> NVMeCommand {
        var c = NVMeCommand(opcode: AdminOpcode.abort)
        c.cdw10 = UInt32(queue) | UInt32(commandID) << 16
        return c
    }

    /// Set Features, Number of Queues (FID 7): `count` SQs and CQs requested.
    public static func setNumberOfQueues(_ count: Int) -> NVMeCommand {
        var c = NVMeCommand(opcode: AdminOpcode.setFeatures)
        c.cdw10 = 0x07
        c.cdw11 = UInt32(count - 1) | UInt32(count - 1) << 16
        return c
    }

    public static func getFeature(_ id: UInt32) -> NVMeCommand {
        var c = NVMeCommand(opcode: AdminOpcode.getFeatures)
        c.cdw10 = id
        return c
    }

    // MARK: NVM commands

    /// Read or Write of `blocks` blocks at `lba`; PRPs are filled in by the queue. A write with
    /// `fua` completes only once its data is on non-volatile media.
    @inline(__always)
    public static func readWrite(write: Bool, namespaceID: UInt32, lba: UInt64, blocks: Int, fua: Bool = false) -> NVMeCommand {
        var c = blockCommand(write ? Opcode.write : Opcode.read, namespaceID, lba, blocks)
        if write, fua { c.cdw12 |= forceUnitAccess }
        return c
    }

    /// Compare of `blocks` blocks at `lba` with the data the PRPs describe: the controller
    /// completes it with Compare Failure (SCT 2h, SC 85h) when any byte differs.
    @inline(__always)
    public static func compare(namespaceID: UInt32, lba: UInt64, blocks: Int) -> NVMeCommand {
        blockCommand(Opcode.compare, namespaceID, lba, blocks)
    }

    /// Write Zeroes of `blocks` blocks at `lba` (no data transfer). `deallocate` sets DEAC, letting
    /// the controller deallocate the blocks instead of writing them; they read as zeroes either way.
    @inline(__always)
    public static func writeZeroes(
        namespaceID: UInt32, lba: UInt64, blocks: Int, deallocate: Bool = false, fua: Bool = false
    ) -> NVMeCommand {
        var c = blockCommand(Opcode.writeZeroes, namespaceID, lba, blocks)
        if deallocate { c.cdw12 |= deallocateBit }
        if fua { c.cdw12 |= forceUnitAccess }
        return c
    }

    /// Dataset Management with the Deallocate attribute (CDW11 bit 2) over `ranges` ranges
    /// (1…256), whose 16-byte descriptors (``NVMeBlockRange/store(to:)``) are the command's data.
    @inline(__always)
    public static func deallocate(namespaceID: UInt32, ranges: Int) -> NVMeCommand {
        var c = NVMeCommand(opcode: Opcode.datasetManagement)
        c.namespaceID = namespaceID
        c.cdw10 = UInt32(ranges - 1) & 0xff
        c.cdw11 = 1 << 2
        return c
    }

    /// SLBA in CDW11:CDW10 and NLB (0's based) in CDW12 bits 15:0.
    @inline(__always)
    private static func blockCommand(_ opcode: UInt8, _ namespaceID: UInt32, _ lba: UInt64, _ blocks: Int) -> NVMeCommand {
        var c = NVMeCommand(opcode: opcode)
        c.namespaceID = namespaceID
        c.cdw10 = UInt32(truncatingIfNeeded: lba)
        c.cdw11 = UInt32(truncatingIfNeeded: lba >> 32)
        c.cdw12 = UInt32(blocks - 1)
        return c
    }

    public static func flush(namespaceID: UInt32) -> NVMeCommand {
        var c = NVMeCommand(opcode: Opcode.flush)
        c.namespaceID = namespaceID
        return c
    }
}

/// One completion queue entry, decoded.
public struct NVMeCompletion: Sendable, Equatable {
    public let commandID: UInt16
    /// The 15-bit status field (0 on success).
    public let statusField: UInt16
    /// DW0: command specific result.
    public let result: UInt32

    public var status: NVMeStatus { NVMeStatus(field: statusField) }
    public var succeeded: Bool { statusField & 0x7ff == 0 }
}
