import CVFIO

/// One device region as the kernel describes it (VFIO_DEVICE_GET_REGION_INFO, or sysfs for UIO).
public struct RegionInfo: Sendable, Equatable {
    /// VFIO's region index: BARs 0–5, ROM 6, config space 7, VGA 8.
    public let index: Int
    /// The region's length in bytes; 0 when the device does not implement it.
    public let size: Int
    /// The file offset of the region on the device fd.
    public let offset: Int64
    /// What the region allows: read, write, mmap, and whether it has a capability chain.
    public let flags: Flags
    /// The capability chain, in the kernel's order.
    public let capabilities: [RegionCapability]

    /// What the region allows (VFIO_REGION_INFO_FLAG_*).
    public struct Flags: OptionSet, Sendable, Hashable {
        /// The kernel's `flags` bits, as reported (unknown bits kept).
        public let rawValue: UInt32
        /// Flags from the kernel's bits, unknown ones kept.
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// The region may be read (VFIO_REGION_INFO_FLAG_READ).
        public static let read = Flags(rawValue: UInt32(VFIO_REGION_INFO_FLAG_READ))
        /// The region may be written (VFIO_REGION_INFO_FLAG_WRITE).
        public static let write = Flags(rawValue: UInt32(VFIO_REGION_INFO_FLAG_WRITE))
        /// Parts of the region may be mmapped (VFIO_REGION_INFO_FLAG_MMAP); ``mappableAreas`` says which.
        public static let mmap = Flags(rawValue: UInt32(VFIO_REGION_INFO_FLAG_MMAP))
        /// The reply carries a capability chain (VFIO_REGION_INFO_FLAG_CAPS).
        public static let caps = Flags(rawValue: UInt32(VFIO_REGION_INFO_FLAG_CAPS))
    }

    /// A description as the kernel (or a test) gives it; nothing is checked.
    public init(index: Int, size: Int, offset: Int64, flags: Flags, capabilities: [RegionCapability] = []) {
        self.index = index
        self.size = size
        self.offset = offset
        self.flags = flags
        self.capabilities = capabilities
    }

    /// The parts that may be mmapped: the sparse areas when the kernel lists them, else the
    /// whole region when it is mmappable, else none.
    public var mappableAreas: [Range<Int>] {
        guard flags.contains(.mmap) else { return [] }
        for case let .sparseMmap(areas) in capabilities { return areas }
        return size > 0 ? [0..<size] : []
    }

    /// True when the whole region can be mapped in one piece.
    public var isFullyMappable: Bool { mappableAreas == [0..<size] && size > 0 }
}

/// A capability in a region's chain.
public enum RegionCapability: Sendable, Equatable {
    /// Only these byte ranges may be mmapped (VFIO_REGION_INFO_CAP_SPARSE_MMAP).
    case sparseMmap([Range<Int>])
    /// The MSI-X table may be mmapped although it lies in this BAR (VFIO_REGION_INFO_CAP_MSIX_MAPPABLE).
    case msixMappable
    /// A device-specific region type (VFIO_REGION_INFO_CAP_TYPE).
    case type(type: UInt32, subtype: UInt32)
    /// Any other capability, by id and version.
    case other(id: UInt16, version: UInt16)
}

extension RegionCapability: CustomStringConvertible {
    /// The capability as tools print it: `sparse-mmap [0x0-0x1000)`, `msix-mappable`, `type 1/2`.
    public var description: String {
        switch self {
        case let .sparseMmap(areas):
            "sparse-mmap "
                + areas.map { "[0x\(String($0.lowerBound, radix: 16))-0x\(String($0.upperBound, radix: 16)))" }.joined(separator: " ")
        case .msixMappable: "msix-mappable"
        case let .type(t, s): "type \(t)/\(s)"
        case let .other(id, v): "cap \(id) v\(v)"
        }
    }
}

/// Walks a VFIO info capability chain (struct vfio_info_cap_header) in `buffer`, starting at
/// `first`. Offsets are from the buffer's start; the walk stops at offset 0, on a loop, or on
/// an offset that would read past the buffer, so a malformed chain can never fault.
func walkInfoCapabilities(
    _ buffer: UnsafeRawBufferPointer, first: Int, _ visit: (_ id: UInt16, _ version: UInt16, _ offset: Int) -> Void
) {
    var offset = first
    var seen = Set<Int>()
    let headerSize = MemoryLayout<vfio_info_cap_header>.size
    while offset != 0, offset + headerSize <= buffer.count, seen.insert(offset).inserted {
        let id = buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        let version = buffer.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self)
        visit(id, version, offset)
        offset = Int(buffer.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
    }
}

extension RegionCapability {
    /// Decodes the region capability at `offset` of a VFIO_DEVICE_GET_REGION_INFO reply.
    static func decode(id: UInt16, version: UInt16, at offset: Int, in buffer: UnsafeRawBufferPointer) -> RegionCapability {
        switch Int32(id) {
        case VFIO_REGION_INFO_CAP_SPARSE_MMAP:
            let countOffset = offset + MemoryLayout<vfio_info_cap_header>.size
            guard countOffset + 8 <= buffer.count else { return .other(id: id, version: version) }
            // Only the areas that are in the buffer, and of those only the ones that fit Int.
            let count = min(Int(buffer.loadUnaligned(fromByteOffset: countOffset, as: UInt32.self)), (buffer.count - countOffset - 8) / 16)
            var areas: [Range<Int>] = []
            for i in 0..<count {
                let p = countOffset + 8 + 16 * i
                let start = buffer.loadUnaligned(fromByteOffset: p, as: UInt64.self)
                let size = buffer.loadUnaligned(fromByteOffset: p + 8, as: UInt64.self)
                if size > 0, let first = Int(exactly: start), let end = Int(exactly: start &+ size), end > first {
                    areas.append(first..<end)
                }
            }
            return .sparseMmap(areas)
        case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
            return .msixMappable
        case VFIO_REGION_INFO_CAP_TYPE:
            let p = offset + MemoryLayout<vfio_info_cap_header>.size
            guard p + 8 <= buffer.count else { return .other(id: id, version: version) }
            return .type(
                type: buffer.loadUnaligned(fromByteOffset: p, as: UInt32.self),
                subtype: buffer.loadUnaligned(fromByteOffset: p + 4, as: UInt32.self))
        default:
            return .other(id: id, version: version)
        }
    }
}
