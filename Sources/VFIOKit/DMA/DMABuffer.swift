/// Memory the device can reach: `bytes` for the CPU, `deviceAddress` for the device.
///
/// Made by ``DMASpace/allocate(_:below:)`` and valid until ``DMASpace/free(_:)`` or the
/// device closes.
public struct DMABuffer: @unchecked Sendable, Equatable {
    public let bytes: UnsafeMutableRawBufferPointer
    /// The address to program into the device: an IOVA, or a physical address without an IOMMU.
    public let deviceAddress: UInt64

    public static func == (a: DMABuffer, b: DMABuffer) -> Bool {
        a.bytes.baseAddress == b.bytes.baseAddress && a.deviceAddress == b.deviceAddress
    }
}
