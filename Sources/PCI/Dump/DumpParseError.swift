/// Why a dump file could not be read. ``description`` names the file, the line (1-based) where
/// there is one, what was wrong, and what to do.
public struct DumpParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        /// The file could not be read at all.
        case unreadable(String)
        /// The file is larger than any dump: ``PCIDump/maximumFileSize`` bytes or more.
        case tooLarge(byteCount: Int)
        /// No line is a device header followed by `OFF: xx xx …` data lines.
        case notADump
        /// A device header line whose address is not a valid PCI address.
        case malformedAddress(PCIAddressError)
        /// A data line (`OFF: xx xx …`) that does not parse; the string says how.
        case malformedDataLine(String)
        /// A data line with no device header before it (or after the blank line ending a device).
        case dataOutsideDevice
        /// A data line putting a byte at `offset`, past the 4096 bytes of config space.
        case beyondConfigSpace(offset: Int)
        /// A data line giving a byte at `offset` that line `firstLine` already gave.
        case repeatedOffset(offset: Int, firstLine: Int)
        /// A device header with no data lines: the dump is cut short, or was made without `-x`.
        case deviceWithoutData(PCIAddress)
        /// A second header for a device that line `firstLine` already started.
        case repeatedDevice(PCIAddress, firstLine: Int)
    }

    /// The file name as given to the reader.
    public let file: String
    /// The 1-based line the problem is on, `nil` when it concerns the whole file.
    public let line: Int?
    public let reason: Reason

    public init(file: String, line: Int?, reason: Reason) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        let what: String =
            switch reason {
            case let .unreadable(why):
                "cannot read the dump file: \(why)"
            case let .tooLarge(byteCount):
                "is \(byteCount) bytes or more, larger than any lspci dump; pass a file made by lspci -x, -xxx or -xxxx"
            case .notADump:
                "is not an lspci config-space dump: no device header line (like \"00:1f.3 …\") is followed by data lines "
                    + "(like \"00: 86 80 …\"); make one with lspci -xxxx or lspci -xxx"
            case let .malformedAddress(error):
                "device header has a bad address: \(error)"
            case let .malformedDataLine(why):
                "malformed data line: \(why); data lines look like \"40: 01 50 03 c8 00 00 00 00\""
            case .dataOutsideDevice:
                "data line with no device header before it; each device's data must follow its header line "
                    + "with no blank line between"
            case let .beyondConfigSpace(offset):
                "data line puts a byte at 0x\(String(offset, radix: 16)), past the 4096 bytes of config space"
            case let .repeatedOffset(offset, firstLine):
                "data line gives config byte 0x\(String(offset, radix: 16)) again; line \(firstLine) already gave it"
            case let .deviceWithoutData(address):
                "device \(address) has no data lines: the dump is cut short, or was made without -x"
            case let .repeatedDevice(address, firstLine):
                "device \(address) appears again; line \(firstLine) already started it"
            }
        return place + ": " + what
    }
}
