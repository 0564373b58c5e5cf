/// A VFIO info capability chain as `vfio_info_cap_add` builds it: each capability starts
/// with `vfio_info_cap_header` (id u16, version u16, next u32), is padded to 8 bytes unless
/// the kernel packs them (``MockKernel/Configuration/padsInfoCapabilities``), and
/// `next` holds the offset of the following one from the start of the info structure
/// (0 ends the chain).
struct InfoCapabilityChain {
    private var buffer: [UInt8] = []
    private var lastHeader: Int? = nil
    private let padded: Bool

    init(padded: Bool) { self.padded = padded }

    var isEmpty: Bool { buffer.isEmpty }
    var size: Int { buffer.count }

    /// Appends a capability whose body (the bytes after the 8-byte header) is `body`.
    mutating func add(id: UInt16, version: UInt16, body: [UInt8]) {
        let start = buffer.count
        let size = padded ? (8 + body.count + 7) & ~7 : 8 + body.count
        buffer += [UInt8](repeating: 0, count: size)
        withUnsafeBytes(of: id.littleEndian) { buffer.replaceSubrange(start..<start + 2, with: $0) }
        withUnsafeBytes(of: version.littleEndian) { buffer.replaceSubrange(start + 2..<start + 4, with: $0) }
        buffer.replaceSubrange(start + 8..<start + 8 + body.count, with: body)
        if let last = lastHeader {
            withUnsafeBytes(of: UInt32(start).littleEndian) { buffer.replaceSubrange(last + 4..<last + 8, with: $0) }
        }
        lastHeader = start
    }

    /// The chain as it is copied after an info structure of `infoSize` bytes: every `next`
    /// becomes relative to the start of the info structure, as `vfio_info_cap_shift` does.
    func shifted(by infoSize: Int) -> [UInt8] {
        var out = buffer
        var at = 0
        while true {
            let next = out[at + 4..<at + 8].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            if next == 0 { break }
            withUnsafeBytes(of: (next + UInt32(infoSize)).littleEndian) { out.replaceSubrange(at + 4..<at + 8, with: $0) }
            at = Int(next)
        }
        return out
    }
}

/// Little-endian encoding of the integers a capability body holds.
func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}
