/// Memory the device can reach: `bytes` for the CPU, `deviceAddress` for the device.
///
/// Made by ``DMASpace/allocate(_:below:)``. A buffer has one owner: it cannot be copied, so it
/// cannot be freed twice or through a stale copy, and ``free()`` consumes it. When the owner lets
/// it go without freeing it, it is unmapped and freed then. Its memory stays valid for as long
/// as the value lives, even after the IOMMU context closes (the device can no longer reach it).
/// The buffer keeps its ``DMASpace`` alive.
public struct DMABuffer: ~Copyable, @unchecked Sendable {
    /// The memory, for the CPU. Valid while this value lives.
    public let bytes: UnsafeMutableRawBufferPointer
    /// The address to program into the device: an IOVA, or a physical address without an IOMMU.
    public let deviceAddress: UInt64
    /// Which mapping of the space this is; IOVAs are reused, identities are not.
    let id: UInt64
    /// Retained for as long as the buffer lives (a trivial field, so `free` can `discard self`).
    private let space: Unmanaged<DMASpace>

    init(bytes: UnsafeMutableRawBufferPointer, deviceAddress: UInt64, id: UInt64, space: DMASpace) {
        self.bytes = bytes
        self.deviceAddress = deviceAddress
        self.id = id
        self.space = Unmanaged.passRetained(space)
    }

    /// The buffer's length in bytes (whole pages).
    public var count: Int { bytes.count }

    /// Unmaps the buffer from the IOMMU, then frees its memory; reports what the kernel refused.
    public consuming func free() throws(VFIOError) {
        let space = self.space
        let id = self.id
        discard self
        defer { space.release() }
        try space.takeUnretainedValue().free(id: id)
    }

    deinit {
        space.takeUnretainedValue().release(id: id)
        space.release()
    }
}

/// Memory the caller owns, mapped for the device by ``DMASpace/map(_:below:)``. The mapping
/// has one owner: ``unmap()`` consumes it, and letting it go unmaps it. The memory itself stays
/// the caller's, who keeps it alive while the mapping lives.
public struct DMAMapping: ~Copyable, @unchecked Sendable {
    /// The address the device uses for the memory's first byte.
    public let deviceAddress: UInt64
    /// The mapped length in bytes.
    public let count: Int
    let id: UInt64
    private let space: Unmanaged<DMASpace>

    init(deviceAddress: UInt64, count: Int, id: UInt64, space: DMASpace) {
        self.deviceAddress = deviceAddress
        self.count = count
        self.id = id
        self.space = Unmanaged.passRetained(space)
    }

    /// Removes the mapping; reports what the kernel refused.
    public consuming func unmap() throws(VFIOError) {
        let space = self.space
        let id = self.id
        discard self
        defer { space.release() }
        try space.takeUnretainedValue().free(id: id)
    }

    deinit {
        space.takeUnretainedValue().release(id: id)
        space.release()
    }
}
