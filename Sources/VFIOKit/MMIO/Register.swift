/// A device's register map: the registers it declares and how many bytes from the start of
/// the region they span. ``Region/mmio(_:)`` checks the region is at least `extent` long, so
/// every access through the resulting ``MMIO`` view is in bounds.
///
/// Declare each register as a computed static, `@inlinable` when the layout is public:
///
/// ```swift
/// enum MyRegisters: RegisterLayout {
///     static let extent = 0x100
///     static var status: Register<Self, UInt32> { .init(0x20) }
/// }
/// ```
///
/// Every access then compiles to one load or store with the offset as an immediate, as in C,
/// and the declaration's checks are decided at compile time. (A stored `static let` register
/// is a lazily initialized global instead: each access outside its module calls an accessor
/// and loads the offset.)
public protocol RegisterLayout {
    /// Bytes from the region's start that the layout's registers cover.
    static var extent: Int { get }
}

/// One register of `Layout`, `Value`-wide, at a fixed offset.
///
/// The layout is part of the type, so a register of one device cannot be used on another's view.
public struct Register<Layout: RegisterLayout, Value: MMIOValue>: Sendable {
    /// The register's byte offset in the view, naturally aligned and inside `Layout.extent`.
    public let offset: Int

    /// Declares a register; its offset must be naturally aligned and inside `Layout.extent`
    /// (a register map is code, so a violation stops the program where the register is used).
    /// Inlined, so a constant offset's checks fold away and the offset becomes an immediate.
    @inlinable @inline(__always)
    public init(_ offset: Int) {
        precondition(offset >= 0 && offset % MemoryLayout<Value>.size == 0, "register offset 0x\(String(offset, radix: 16)) is not aligned")
        precondition(
            offset + MemoryLayout<Value>.size <= Layout.extent, "register at 0x\(String(offset, radix: 16)) is outside \(Layout.self)")
        self.offset = offset
    }
}
