/// Memory the device can reach: `bytes` for the CPU, `deviceAddress` for the device.
///
/// Made by ``DMASpace/allocate(_:below:)``, or by ``DMASpace/claim(_:)`` from one a predecessor
/// handed over (``handOver()``). A buffer has one owner: it cannot be copied, so it
/// cannot be freed twice or through a stale copy, and ``free()`` consumes it. When the owner lets
/// it go without freeing it, it is unmapped and freed then. Its memory stays valid for as long
/// as the value lives, even after the IOMMU context closes (the device can no longer reach it).
/// The buffer keeps its ``DMASpace`` alive.
public struct DMABuffer: ~Copyable, @unchecked Sendable {
    /// The memory, for the CPU. Valid while this value lives.
    public let bytes: UnsafeMutableRawBufferPointer
    /// The address to program into the device: an IOVA, or a physical address without an IOMMU.
    public let deviceAddress: UInt64
    let handle: MappingHandle

    init(bytes: UnsafeMutableRawBufferPointer, deviceAddress: UInt64, handle: MappingHandle) {
        self.bytes = bytes
        self.deviceAddress = deviceAddress
        self.handle = handle
    }

    /// The buffer's length in bytes (whole pages).
    public var count: Int { bytes.count }

    /// Unmaps the buffer from the IOMMU, then frees its memory; reports what the kernel refused.
    public consuming func free() throws(VFIOError) {
        let handle = self.handle
        discard self
        try handle.free()
    }

    /// Gives the buffer up for a successor, keeping what the device relies on: the memory (in
    /// its memfd) and the IOMMU mapping at ``deviceAddress`` stay, and the IOVA stays reserved.
    /// This process's view of the memory is unmapped, as a process's exit would unmap it. The
    /// space keeps the piece until ``DMASpace/claim(_:)`` takes it back or
    /// ``DMASpace/releaseHandedOver()`` frees it. Only memory behind an IOMMU can be handed over;
    /// for any other buffer, or one the IOMMU no longer maps, this throws and frees the buffer.
    public consuming func handOver() throws(VFIOError) -> DMAPiece {
        let handle = self.handle
        discard self
        return try handle.handOver()
    }

    deinit { handle.release() }
}

/// Memory the caller owns, mapped for the device by ``DMASpace/map(_:below:)``. The mapping
/// has one owner: ``unmap()`` consumes it, and letting it go unmaps it. The memory itself stays
/// the caller's, who keeps it alive while the mapping lives.
public struct DMAMapping: ~Copyable, @unchecked Sendable {
    /// The address the device uses for the memory's first byte.
    public let deviceAddress: UInt64
    /// The mapped length in bytes.
    public let count: Int
    let handle: MappingHandle

    init(deviceAddress: UInt64, count: Int, handle: MappingHandle) {
        self.deviceAddress = deviceAddress
        self.count = count
        self.handle = handle
    }

    /// Removes the mapping; reports what the kernel refused.
    public consuming func unmap() throws(VFIOError) {
        let handle = self.handle
        discard self
        try handle.free()
    }

    deinit { handle.release() }
}

/// One mapping's identity in its space, which it keeps alive. Trivial, so its owners can
/// `discard self`; each handle is ended exactly once, by `free` or `release`.
struct MappingHandle {
    /// IOVAs are reused; identities are not.
    let id: UInt64
    private let space: Unmanaged<DMASpace>

    init(id: UInt64, space: DMASpace) {
        self.id = id
        self.space = Unmanaged.passRetained(space)
    }

    func free() throws(VFIOError) {
        defer { space.release() }
        try space.takeUnretainedValue().free(id: id)
    }

    func release() {
        space.takeUnretainedValue().release(id: id)
        space.release()
    }

    func handOver() throws(VFIOError) -> DMAPiece {
        defer { space.release() }
        return try space.takeUnretainedValue().handOver(id: id)
    }
}
