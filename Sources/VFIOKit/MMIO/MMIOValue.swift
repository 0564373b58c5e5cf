import CVFIO

/// A register width. Each load and store is exactly one volatile access of that width,
/// which the compiler can neither fold, split nor reorder with other MMIO accesses.
public protocol MMIOValue: FixedWidthInteger, UnsignedInteger, Sendable {
    /// One volatile load of the type's width from `address`, which must be aligned to it.
    static func volatileLoad(_ address: UnsafeRawPointer) -> Self
    /// One volatile store of the type's width to `address`, which must be aligned to it.
    static func volatileStore(_ address: UnsafeMutableRawPointer, _ value: Self)
}

extension UInt8: MMIOValue {
    /// One volatile 8-bit load.
    @inlinable @inline(__always) public static func volatileLoad(_ a: UnsafeRawPointer) -> UInt8 { cvfio_read8(a) }
    /// One volatile 8-bit store.
    @inlinable @inline(__always) public static func volatileStore(_ a: UnsafeMutableRawPointer, _ v: UInt8) { cvfio_write8(a, v) }
}

extension UInt16: MMIOValue {
    /// One volatile 16-bit load; `a` must be 2-byte aligned.
    @inlinable @inline(__always) public static func volatileLoad(_ a: UnsafeRawPointer) -> UInt16 { cvfio_read16(a) }
    /// One volatile 16-bit store; `a` must be 2-byte aligned.
    @inlinable @inline(__always) public static func volatileStore(_ a: UnsafeMutableRawPointer, _ v: UInt16) { cvfio_write16(a, v) }
}

extension UInt32: MMIOValue {
    /// One volatile 32-bit load; `a` must be 4-byte aligned.
    @inlinable @inline(__always) public static func volatileLoad(_ a: UnsafeRawPointer) -> UInt32 { cvfio_read32(a) }
    /// One volatile 32-bit store; `a` must be 4-byte aligned.
    @inlinable @inline(__always) public static func volatileStore(_ a: UnsafeMutableRawPointer, _ v: UInt32) { cvfio_write32(a, v) }
}

extension UInt64: MMIOValue {
    /// One volatile 64-bit load; `a` must be 8-byte aligned.
    @inlinable @inline(__always) public static func volatileLoad(_ a: UnsafeRawPointer) -> UInt64 { cvfio_read64(a) }
    /// One volatile 64-bit store; `a` must be 8-byte aligned.
    @inlinable @inline(__always) public static func volatileStore(_ a: UnsafeMutableRawPointer, _ v: UInt64) { cvfio_write64(a, v) }
}

/// CPU memory barriers for ordering MMIO against DMA memory.
public enum MemoryBarrier {
    /// All earlier loads and stores complete before any later one.
    @inlinable @inline(__always) public static func full() { cvfio_mb() }
    /// Earlier loads complete before later loads (e.g. status register, then DMA data).
    @inlinable @inline(__always) public static func read() { cvfio_rmb() }
    /// Earlier stores complete before later stores (e.g. DMA descriptors, then a doorbell).
    @inlinable @inline(__always) public static func write() { cvfio_wmb() }
}
