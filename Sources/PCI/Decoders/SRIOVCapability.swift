/// The Single Root I/O Virtualization extended capability (ID 0x0010): how many virtual
/// functions a physical function offers and where they appear.
public struct SRIOVCapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// Config offset of the capability.
    public let offset: Int
    public let version: Int
    /// SR-IOV Control bit 0.
    public let isVFEnabled: Bool
    /// SR-IOV Control bit 3, VF memory space enable.
    public let isVFMemorySpaceEnabled: Bool
    /// SR-IOV Control bit 4.
    public let isARICapableHierarchy: Bool
    public let initialVFs: Int
    public let totalVFs: Int
    /// NumVFs: how many VFs software has set up.
    public let numVFs: Int
    public let functionDependencyLink: Int
    /// Routing-ID distance from the PF to VF 1 (for the current NumVFs).
    public let firstVFOffset: Int
    /// Routing-ID distance between consecutive VFs (for the current NumVFs).
    public let vfStride: Int
    public let vfDeviceID: UInt16
    /// Bit n set: pages of 2^(n+12) bytes are supported.
    public let supportedPageSizes: UInt32
    public let systemPageSize: UInt32

    /// Offset of SR-IOV Control.
    public var controlOffset: Int { offset + 8 }
    /// Offset of NumVFs.
    public var numVFsOffset: Int { offset + 0x10 }

    /// Decodes the SR-IOV capability at `offset`; throws if it is another capability or not held.
    public init(_ config: ConfigSpace, at offset: Int) throws(ConfigSpaceError) {
        version = Int(try config.expectExtendedCapability(.singleRootIOV, at: offset))
        self.offset = offset
        let control = try config.uint16(at: offset + 0x08)
        isVFEnabled = control.bit(0)
        isVFMemorySpaceEnabled = control.bit(3)
        isARICapableHierarchy = control.bit(4)
        initialVFs = Int(try config.uint16(at: offset + 0x0c))
        totalVFs = Int(try config.uint16(at: offset + 0x0e))
        numVFs = Int(try config.uint16(at: offset + 0x10))
        functionDependencyLink = Int(try config.uint8(at: offset + 0x12))
        firstVFOffset = Int(try config.uint16(at: offset + 0x14))
        vfStride = Int(try config.uint16(at: offset + 0x16))
        vfDeviceID = try config.uint16(at: offset + 0x1a)
        supportedPageSizes = try config.uint32(at: offset + 0x1c)
        systemPageSize = try config.uint32(at: offset + 0x20)
    }

    /// The address of VF `number` (1-based, up to ``numVFs``) of the physical function at
    /// `physicalFunction`: its routing ID plus First VF Offset plus (number − 1) × VF Stride.
    /// `nil` when `number` is out of range or the routing ID would pass bus 0xff.
    public func virtualFunctionAddress(_ number: Int, physicalFunction: PCIAddress) -> PCIAddress? {
        guard number >= 1, number <= numVFs else { return nil }
        let pfRoutingID = Int(physicalFunction.bus) << 8 | Int(physicalFunction.device) << 3 | Int(physicalFunction.function)
        let routingID = pfRoutingID + firstVFOffset + (number - 1) * vfStride
        guard routingID <= 0xffff else { return nil }
        return try? PCIAddress(
            domain: physicalFunction.domain, bus: UInt8(routingID >> 8), device: UInt8(routingID >> 3 & 0x1f),
            function: UInt8(routingID & 7))
    }

    public var description: String {
        "SR-IOV: VFs \(isVFEnabled ? "enabled" : "disabled"), \(numVFs) of \(totalVFs) (initial \(initialVFs)), "
            + "VF device 0x\(hexString(vfDeviceID, width: 4)), offset \(firstVFOffset) stride \(vfStride), "
            + "page sizes 0x\(String(supportedPageSizes, radix: 16)) (system 0x\(String(systemPageSize, radix: 16)))"
    }
}
