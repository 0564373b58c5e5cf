import SystemPackage

/// The kernel's half of VFIO's argsz protocol for an ioctl that fills in an info structure
/// (`VFIO_GROUP_GET_STATUS`, `VFIO_DEVICE_GET_INFO`, `_GET_REGION_INFO`, `_GET_IRQ_INFO`,
/// `VFIO_IOMMU_GET_INFO`), as vfio, vfio_pci_core and vfio_iommu_type1 serve it in Linux 6.12
/// (see ``MockKernel/Profile/writesInfoPadding`` for 6.1's copy-back):
/// - `copy_from_user` of `minsz` bytes (the fields every version of the structure has) into
///   the kernel's copy of the structure, zero past them;
/// - `EINVAL` when the caller's `argsz` is below `minsz`;
/// - a capability chain is copied after the structure only when `argsz` has room for it;
///   otherwise `argsz` is raised to the size needed and `cap_offset` is 0;
/// - `copy_to_user` of `min(argsz, size)` bytes of the kernel's copy.
///
/// So nothing is ever written past the `argsz` the caller declared. Like the kernel, the mock
/// cannot see the caller's real buffer: a caller that declares more than it has is written up
/// to what it declared.
struct InfoReply {
    /// `sizeof` the structure in the kernel's uapi.
    let size: Int
    /// The `argsz` the caller passed.
    let argsz: Int
    private var bytes: [UInt8]
    private var capabilities: [UInt8] = []
    /// How many bytes of the structure `copyOut` writes.
    private let copied: Int

    /// `capOffsetEnd` set: the structure is copied back as kernels before 6.12 did for
    /// `VFIO_DEVICE_GET_INFO` and type1's `VFIO_IOMMU_GET_INFO` (`capsz`): through `cap_offset`
    /// when `argsz` reaches its end, else `minsz` bytes, never the `pad` after it.
    init(_ arg: UserPointer, size: Int, minsz: Int, capOffsetEnd: Int? = nil) throws(Errno) {
        self.size = size
        bytes = arg.bytes(at: 0, count: minsz) + [UInt8](repeating: 0, count: size - minsz)
        argsz = Int(arg.load(0, as: UInt32.self))
        guard argsz >= minsz else { throw .invalidArgument }
        if let capsz = capOffsetEnd {
            copied = argsz >= capsz ? capsz : minsz
        } else {
            copied = min(argsz, size)
        }
    }

    func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<offset + $0.count, with: $0) }
    }

    /// Offers `caps` after the structure, with its offset in the u32 at `capOffsetField`.
    mutating func offer(_ caps: InfoCapabilityChain, capOffsetField: Int) {
        guard !caps.isEmpty else { return }
        if argsz < size + caps.size {
            store(UInt32(size + caps.size), at: 0)
            store(UInt32(0), at: capOffsetField)
        } else {
            capabilities = caps.shifted(by: size)
            store(UInt32(size), at: capOffsetField)
        }
    }

    /// The kernel's `copy_to_user`s: the capabilities if offered with room, then the structure.
    func copyOut(to arg: UserPointer) {
        arg.copy(from: capabilities, at: size)
        arg.copy(from: Array(bytes.prefix(copied)), at: 0)
    }
}
