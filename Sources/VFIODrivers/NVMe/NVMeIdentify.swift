/// What Identify Controller (CNS 1) says, the fields a host needs: serial number at byte 4
/// (20 ASCII bytes), model number at 24 (40), firmware revision at 64 (8), MDTS at 77,
/// controller id at 78, version at 80, CRDT1–3 at 128, NN at 516, ONCS at 520, VWC at 525,
/// SGLS at 536.
public struct NVMeControllerIdentity: Sendable, Equatable, Codable {
    public let vendorID: UInt16
    public let subsystemVendorID: UInt16
    public let serialNumber: String
    public let modelNumber: String
    public let firmwareRevision: String
    /// Maximum data transfer: 2^MDTS minimum pages; 0 means no limit.
    public let maxDataTransferExponent: UInt8
    public let controllerID: UInt16
    public let version: UInt32
    public let namespaceCount: UInt32
    /// VWC bit 0: the controller has a volatile write cache, so Flush has work to do.
    public let volatileWriteCache: Bool
    /// ONCS: the optional NVM commands the controller supports.
    public let optionalCommands: UInt16
    /// SGLS: bits 1:0 nonzero when the controller takes SGLs for NVM command data.
    public let sglSupport: UInt32
    /// CRDT1–3: the Command Retry Delay Times, in 100 ms units, that a failure's CRD 1–3 asks
    /// the host to wait before retrying (once Advanced Command Retry is enabled).
    public let commandRetryDelayTimes: [UInt16]

    /// SGLS bits 1:0: whether NVM commands may describe their data with SGLs.
    public var sgl: NVMeSGLSupport {
        switch sglSupport & 3 {
        case 1: .byteAligned
        case 2: .dwordAligned
        default: .unsupported
        }
    }

    /// ONCS bit 0: Compare.
    public var supportsCompare: Bool { optionalCommands & 1 != 0 }
    /// ONCS bit 2: Dataset Management (deallocate).
    public var supportsDatasetManagement: Bool { optionalCommands & 4 != 0 }
    /// ONCS bit 3: Write Zeroes.
    public var supportsWriteZeroes: Bool { optionalCommands & 8 != 0 }

    init(page: UnsafeRawBufferPointer) {
        vendorID = page.load(fromByteOffset: 0, as: UInt16.self)
        subsystemVendorID = page.load(fromByteOffset: 2, as: UInt16.self)
        serialNumber = Self.ascii(page, 4, 20)
        modelNumber = Self.ascii(page, 24, 40)
        firmwareRevision = Self.ascii(page, 64, 8)
        maxDataTransferExponent = page[77]
        controllerID = page.load(fromByteOffset: 78, as: UInt16.self)
        version = page.load(fromByteOffset: 80, as: UInt32.self)
        namespaceCount = page.load(fromByteOffset: 516, as: UInt32.self)
        optionalCommands = page.load(fromByteOffset: 520, as: UInt16.self)
        volatileWriteCache = page[525] & 1 != 0
        sglSupport = page.load(fromByteOffset: 536, as: UInt32.self)
        commandRetryDelayTimes = (0..<3).map { page.load(fromByteOffset: 128 + 2 * $0, as: UInt16.self) }
    }

    /// An ASCII field without its space padding (and NULs some controllers pad with).
    static func ascii(_ page: UnsafeRawBufferPointer, _ offset: Int, _ width: Int) -> String {
        let bytes = page[offset..<offset + width].map { $0 == 0 ? 0x20 : $0 }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: " ")
    }
}

/// SGL support as Identify Controller's SGLS bits 1:0 state it.
public enum NVMeSGLSupport: Sendable, Equatable {
    /// 00b: PRPs only.
    case unsupported
    /// 01b: SGLs with no alignment or granularity requirement.
    case byteAligned
    /// 10b: SGLs whose Data Blocks are dword-aligned in address and length.
    case dwordAligned
}

/// One LBA format a namespace can be formatted with (Identify Namespace, "LBA Format Data
/// Structure"): MS in bits 15:0, LBADS (log2 of the data size) in 23:16, RP in 25:24.
public struct NVMeLBAFormat: Sendable, Equatable, Codable {
    /// Bytes of data per logical block.
    public let dataSize: Int
    /// Bytes of metadata per logical block (0: none).
    public let metadataSize: Int
    /// Relative performance: 0 best … 3 degraded.
    public let relativePerformance: Int

    public init(dataSize: Int, metadataSize: Int, relativePerformance: Int = 0) {
        self.dataSize = dataSize
        self.metadataSize = metadataSize
        self.relativePerformance = relativePerformance
    }

    init(_ raw: UInt32) {
        let lbads = Int((raw >> 16) & 0xff)
        dataSize = lbads == 0 ? 0 : 1 << lbads
        metadataSize = Int(raw & 0xffff)
        relativePerformance = Int((raw >> 24) & 3)
    }
}

/// What Identify Namespace (CNS 0) says: NSZE at byte 0, NCAP at 8, NUSE at 16, NLBAF at 25
/// (0's based), FLBAS at 26 (bits 3:0 pick the format, bits 6:5 its high bits past 16 formats;
/// bit 4: metadata at the end of each block's data), DLFEAT at 33 and the LBA formats from 128,
/// 4 bytes each.
public struct NVMeNamespaceIdentity: Sendable, Equatable, Codable {
    public let id: UInt32
    /// Size in logical blocks.
    public let size: UInt64
    public let capacity: UInt64
    public let utilization: UInt64
    /// Bytes per logical block of the format in use.
    public let blockSize: Int
    /// Metadata bytes per block of the format in use.
    public let metadataSize: Int
    /// Every LBA format the namespace supports, and the index of the one in use.
    public let formats: [NVMeLBAFormat]
    public let formatIndex: Int
    /// FLBAS bit 4: metadata is transferred at the end of each block's data (extended LBAs),
    /// not in a separate buffer.
    public let metadataExtended: Bool
    /// DLFEAT bits 2:0 = 001b: a deallocated block reads as zeroes.
    public let deallocatedReadsZero: Bool
    /// DLFEAT bit 3: Write Zeroes honours its Deallocate (DEAC) bit on this namespace.
    public let writeZeroesCanDeallocate: Bool

    init(id: UInt32, page: UnsafeRawBufferPointer) {
        self.id = id
        size = page.load(fromByteOffset: 0, as: UInt64.self)
        capacity = page.load(fromByteOffset: 8, as: UInt64.self)
        utilization = page.load(fromByteOffset: 16, as: UInt64.self)
        let count = min(Int(page[25]) + 1, 64)
        formats = (0..<count).map { NVMeLBAFormat(page.load(fromByteOffset: 128 + 4 * $0, as: UInt32.self)) }
        formatIndex = Int(page[26] & 0xf) | (count > 16 ? Int((page[26] >> 5) & 3) << 4 : 0)
        let inUse = formatIndex < count ? formats[formatIndex] : NVMeLBAFormat(dataSize: 0, metadataSize: 0)
        blockSize = inUse.dataSize
        metadataSize = inUse.metadataSize
        metadataExtended = page[26] & 0x10 != 0
        deallocatedReadsZero = page[33] & 7 == 1
        writeZeroesCanDeallocate = page[33] & 8 != 0
    }

    public var bytes: UInt64 { size * UInt64(blockSize) }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.last == set { s.removeLast() }
        while s.first == set { s.removeFirst() }
        return String(s)
    }
}
