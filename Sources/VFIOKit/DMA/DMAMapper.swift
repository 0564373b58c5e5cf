/// An IO address space: how the addresses a device uses for DMA reach process memory.
///
/// `Type1Container` and `IOMMUFDAddressSpace` translate through an IOMMU, so the framework
/// chooses each IOVA. `PhysicalAddressSpace` (no-IOMMU and UIO) does not: the device uses
/// physical addresses, which the kernel reports and the framework cannot choose.
protocol DMAMapper: AnyObject, Sendable {
    /// True when the device's addresses go through an IOMMU that the framework programs.
    var translates: Bool { get }
    /// How many mappings the kernel allows at once.
    var mappingLimit: Int { get }
    /// Makes `memory` reachable by the device. With translation it is placed at `iova`;
    /// without, `iova` is ignored. Returns the device address of the first byte.
    func map(_ memory: UnsafeMutableRawBufferPointer, at iova: UInt64) throws(VFIOError) -> UInt64
    /// Removes the mapping made at `iova` with this length.
    func unmap(iova: UInt64, length: Int) throws(VFIOError)
    /// Releases the address space; every mapping is gone afterwards. Safe to call twice.
    func close()
}
