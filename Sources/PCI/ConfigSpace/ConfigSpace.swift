/// A snapshot of one PCI function's configuration space: up to 4096 bytes, each either held or
/// unavailable.
///
/// A live read from a device holds every byte of its 256- or 4096-byte space. A dump file may hold
/// fewer (`lspci -x` gives 64 bytes, `-xxx` 256, `-xxxx` 4096, and a cut-short file less), and the
/// bytes it does not hold are *unavailable*, never zero: every read that touches one throws
/// ``ConfigSpaceError/unavailable(offset:width:)`` naming the first such byte.
///
/// Multi-byte values are little-endian, as PCI defines them. Reads need not be aligned.
public struct ConfigSpace: Hashable, Sendable {
    /// The largest configuration space PCI Express defines.
    public static let maximumSize = 4096
    /// The size of conventional PCI configuration space; extended capabilities start here.
    public static let conventionalSize = 256

    /// One entry per offset up to ``size``; `nil` marks a byte the source does not hold.
    private var bytes: [UInt8?]

    /// A configuration space holding every byte given, starting at offset 0.
    ///
    /// - Throws: ``ConfigSpaceError/tooLarge(byteCount:)`` for more than 4096 bytes.
    public init(bytes: some Collection<UInt8>) throws(ConfigSpaceError) {
        guard bytes.count <= Self.maximumSize else { throw .tooLarge(byteCount: bytes.count) }
        self.bytes = bytes.map { UInt8?($0) }
    }

    /// A configuration space with gaps: element `i` is the byte at offset `i`, or `nil` where the
    /// source does not hold it. Trailing `nil`s are dropped, so ``size`` ends at the last byte held.
    ///
    /// - Throws: ``ConfigSpaceError/tooLarge(byteCount:)`` when a byte is held beyond offset 4095.
    public init(partialBytes: [UInt8?]) throws(ConfigSpaceError) {
        var trimmed = partialBytes
        while let last = trimmed.last, last == nil { trimmed.removeLast() }
        guard trimmed.count <= Self.maximumSize else { throw .tooLarge(byteCount: trimmed.count) }
        bytes = trimmed
    }

    /// One past the last byte held: 64, 256 or 4096 for complete sources, less for a cut-short
    /// dump. This is the `cfg` size libpci reports for a dump. Bytes below it may still be
    /// unavailable if the source had gaps.
    public var size: Int { bytes.count }

    /// Whether every byte in `range` is held. Ranges outside 0..<4096 are never available.
    public func isAvailable(_ range: Range<Int>) -> Bool {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return false }
        return bytes[range].allSatisfy { $0 != nil }
    }

    /// Reads a little-endian unsigned integer of `T`'s width at `offset`.
    ///
    /// - Throws: ``ConfigSpaceError/outOfBounds(offset:width:)`` when the value does not lie
    ///   within 0..<4096, ``ConfigSpaceError/unavailable(offset:width:)`` when it does but a byte
    ///   of it is not held. Never traps, whatever `offset` is.
    public func read<T: FixedWidthInteger & UnsignedInteger>(
        _: T.Type, at offset: Int
    ) throws(ConfigSpaceError) -> T {
        let width = T.bitWidth / 8
        guard offset >= 0, offset <= Self.maximumSize - width else {
            throw .outOfBounds(offset: offset, width: width)
        }
        var value: T = 0
        for i in 0..<width {
            guard offset + i < bytes.count, let byte = bytes[offset + i] else {
                throw .unavailable(offset: offset + i, width: width)
            }
            value |= T(byte) << (8 * i)
        }
        return value
    }

    /// Reads the byte at `offset`; see ``read(_:at:)`` for the errors.
    public func uint8(at offset: Int) throws(ConfigSpaceError) -> UInt8 { try read(UInt8.self, at: offset) }
    /// Reads the 16-bit value at `offset`; see ``read(_:at:)`` for the errors.
    public func uint16(at offset: Int) throws(ConfigSpaceError) -> UInt16 { try read(UInt16.self, at: offset) }
    /// Reads the 32-bit value at `offset`; see ``read(_:at:)`` for the errors.
    public func uint32(at offset: Int) throws(ConfigSpaceError) -> UInt32 { try read(UInt32.self, at: offset) }

    /// Stores `value` little-endian at `offset`, making those bytes held (and growing ``size`` if
    /// they lie past it; any bytes skipped over stay unavailable).
    ///
    /// - Throws: ``ConfigSpaceError/outOfBounds(offset:width:)`` when the value would not lie
    ///   within 0..<4096; nothing is written then.
    public mutating func write<T: FixedWidthInteger & UnsignedInteger>(
        _ value: T, at offset: Int
    ) throws(ConfigSpaceError) {
        let width = T.bitWidth / 8
        guard offset >= 0, offset <= Self.maximumSize - width else {
            throw .outOfBounds(offset: offset, width: width)
        }
        if bytes.count < offset + width {
            bytes.append(contentsOf: repeatElement(nil, count: offset + width - bytes.count))
        }
        for i in 0..<width {
            bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i))
        }
    }
}
