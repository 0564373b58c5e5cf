import VFIOKit

/// The NVMe controller registers at the start of BAR 0 (NVMe base specification, section 3.1).
/// Doorbells follow at 0x1000 with a stride from CAP; see ``NVMeDoorbell``.
public enum NVMeRegisters: RegisterLayout {
    public static let extent = 0x38

    /// Controller Capabilities.
    public static let capabilities = Register<NVMeRegisters, UInt64>(0x00)
    /// Version: major in bits 31:16, minor in 15:8.
    public static let version = Register<NVMeRegisters, UInt32>(0x08)
    /// Controller Configuration.
    public static let configuration = Register<NVMeRegisters, UInt32>(0x14)
    /// Controller Status.
    public static let status = Register<NVMeRegisters, UInt32>(0x1c)
    /// Admin Queue Attributes: ACQS in 27:16, ASQS in 11:0, both 0's based.
    public static let adminQueueAttributes = Register<NVMeRegisters, UInt32>(0x24)
    public static let adminSubmissionQueue = Register<NVMeRegisters, UInt64>(0x28)
    public static let adminCompletionQueue = Register<NVMeRegisters, UInt64>(0x30)

    public static let doorbellBase = 0x1000
}

/// CAP, decoded.
public struct NVMeCapabilities: Sendable, Equatable {
    public let raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }

    /// Maximum entries per queue (MQES + 1).
    public var maxQueueEntries: Int { Int(raw & 0xffff) + 1 }
    /// Queues must be physically contiguous (CQR).
    public var contiguousQueuesRequired: Bool { raw & (1 << 16) != 0 }
    /// The worst-case time to become ready or not ready after CC.EN changes (TO, 500 ms units).
    public var readyTimeout: Duration { .milliseconds(500 * Int((raw >> 24) & 0xff)) }
    /// Bytes between doorbells: 4 << DSTRD.
    public var doorbellStride: Int { 4 << Int((raw >> 32) & 0xf) }
    /// The NVM command set is supported (CSS bit 0).
    public var supportsNVMCommandSet: Bool { raw & (1 << 37) != 0 }
    /// Smallest and largest memory page size: 4 KiB << MPSMIN / MPSMAX.
    public var minPageSize: Int { 4096 << Int((raw >> 48) & 0xf) }
    public var maxPageSize: Int { 4096 << Int((raw >> 52) & 0xf) }
}

/// CC and CSTS bits.
enum NVMeControl {
    static let enable: UInt32 = 1
    /// IOSQES 6 (64-byte entries) and IOCQES 4 (16-byte entries); CSS NVM, MPS 4 KiB, round robin.
    static let entrySizes: UInt32 = 6 << 16 | 4 << 20
    static let shutdownNormal: UInt32 = 1 << 14
    static let shutdownMask: UInt32 = 3 << 14

    static let ready: UInt32 = 1
    static let fatalStatus: UInt32 = 2
    static let shutdownStatusMask: UInt32 = 3 << 2
    static let shutdownComplete: UInt32 = 2 << 2
}

/// One doorbell: a plain store when BAR 0's doorbell page is mapped, else a write through the
/// device file. The only place the driver touches BAR 0 outside its register view.
struct NVMeDoorbell: @unchecked Sendable {
    private let pointer: UnsafeMutableRawPointer?
    private let region: Region
    private let offset: Int

    init(region: Region, queue: Int, completion: Bool, stride: Int) {
        offset = NVMeRegisters.doorbellBase + (2 * queue + (completion ? 1 : 0)) * stride
        self.region = region
        pointer = region.pointer(covering: offset..<offset + 4)
    }

    @inline(__always) func ring(_ value: UInt32) {
        if let pointer { UInt32.volatileStore(pointer, value) } else { region.trappedWrite(value, at: offset) }
    }
}
