/// One base address register (or the expansion ROM) as the kernel assigned it, from a line of
/// the device's sysfs `resource` file.
public struct PCIBAR: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case io, memory32, memory64
        /// The expansion ROM (line 6 of `resource`).
        case rom
    }

    /// 0–5 for BARs, 6 for the expansion ROM.
    public let index: Int
    public let kind: Kind
    /// The bus address the kernel assigned; 0 when the BAR is sized but not assigned.
    public let start: UInt64
    public let size: UInt64
    public let prefetchable: Bool

    public init(index: Int, kind: Kind, start: UInt64, size: UInt64, prefetchable: Bool) {
        self.index = index
        self.kind = kind
        self.start = start
        self.size = size
        self.prefetchable = prefetchable
    }

    // The kernel's IORESOURCE_* bits in the flags column (include/linux/ioport.h).
    private static let ioFlag: UInt64 = 0x100
    private static let memFlag: UInt64 = 0x200
    private static let prefetchFlag: UInt64 = 0x2000
    private static let mem64Flag: UInt64 = 0x10_0000

    /// Parses a `resource` file: one `start end flags` line of hex numbers per resource. Lines
    /// 0–5 are the BARs and line 6 the ROM; later lines (a bridge's windows) are not BARs and are
    /// skipped, as are unused lines (flags 0).
    ///
    /// Returns nil for a line that is not three hex numbers with end ≥ start.
    public static func parse(resourceFile text: String) -> [PCIBAR]? {
        var bars: [PCIBAR] = []
        for (index, line) in text.split(separator: "\n").prefix(7).enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 3, let start = hex(fields[0]), let end = hex(fields[1]), let flags = hex(fields[2])
            else { return nil }
            guard flags != 0 else { continue }
            guard end >= start else { return nil }
            let kind: Kind =
                if index == 6 { .rom } else if flags & ioFlag != 0 { .io } else if flags & mem64Flag != 0 { .memory64 } else {
                    .memory32
                }
            guard kind == .rom || flags & (ioFlag | memFlag) != 0 else { continue }
            bars.append(
                PCIBAR(index: index, kind: kind, start: start, size: end &- start &+ 1, prefetchable: flags & prefetchFlag != 0))
        }
        return bars
    }

    private static func hex(_ s: Substring) -> UInt64? {
        guard s.hasPrefix("0x") else { return nil }
        return UInt64(s.dropFirst(2), radix: 16)
    }
}
