/// The line-by-line state machine behind ``PCIDump``.
struct DumpTextParser {
    /// The device whose header was the last one seen, until a blank line or the next header.
    private struct OpenDevice {
        let address: PCIAddress
        let title: String
        let line: Int
        var bytes: [UInt8?] = []
        /// For each byte given so far, the line that gave it, to name both lines of an overlap.
        var lineOfByte: [Int] = []
    }

    private let file: String
    private var current: OpenDevice?
    private var devices: [PCIDump.Device] = []
    private var headerLines: [PCIAddress: Int] = [:]
    /// The first device found without data; reported only if the file turns out to be a dump.
    private var firstDeviceWithoutData: OpenDevice?

    init(file: String) { self.file = file }

    /// Takes the next line, without its line ending.
    mutating func consume(_ line: Substring, number: Int) throws(DumpParseError) {
        if line.isEmpty {
            return try closeDevice()
        }
        let firstWord = line.prefix { $0 != " " }
        if let offset = Self.dataOffset(firstWord) {
            guard current != nil else { throw error(number, .dataOutsideDevice) }
            try addData(line.dropFirst(firstWord.count), at: offset, line: number)
        } else if Self.looksLikeAddress(firstWord) {
            try closeDevice()
            let address: PCIAddress
            do { address = try PCIAddress(parsing: String(firstWord)) } catch {
                throw self.error(number, .malformedAddress(error))
            }
            if let firstLine = headerLines[address] { throw error(number, .repeatedDevice(address, firstLine: firstLine)) }
            headerLines[address] = number
            current = OpenDevice(address: address, title: String(line.dropFirst(firstWord.count + 1)), line: number)
        }
    }

    mutating func finish() throws(DumpParseError) -> [PCIDump.Device] {
        try closeDevice()
        guard !devices.isEmpty else { throw error(nil, .notADump) }
        if let empty = firstDeviceWithoutData { throw error(empty.line, .deviceWithoutData(empty.address)) }
        return devices
    }

    private mutating func closeDevice() throws(DumpParseError) {
        guard let device = current else { return }
        current = nil
        guard !device.bytes.isEmpty else {
            if firstDeviceWithoutData == nil { firstDeviceWithoutData = device }
            return
        }
        // The data lines have already kept every byte below 4096, so this cannot fail.
        guard let config = try? ConfigSpace(partialBytes: device.bytes) else { return }
        devices.append(PCIDump.Device(address: device.address, title: device.title, config: config, line: device.line))
    }

    /// `rest` is the data line after its `OFF:` word.
    private mutating func addData(_ rest: Substring, at offset: Int, line: Int) throws(DumpParseError) {
        guard rest.first == " " else { throw error(line, .malformedDataLine("expected a space after the offset")) }
        let tokens = rest.split(separator: " ")
        guard !tokens.isEmpty else { throw error(line, .malformedDataLine("no bytes after the offset")) }
        var values: [UInt8] = []
        for (index, token) in tokens.enumerated() {
            guard token.utf8.count == 2, let value = UInt8(token, radix: 16), token.allSatisfy(\.isHexDigit) else {
                if index == tokens.count - 1, token.utf8.count == 1, token.allSatisfy(\.isHexDigit) {
                    throw error(line, .malformedDataLine("it ends in half a byte, \"\(token)\": the dump is cut short"))
                }
                throw error(line, .malformedDataLine("item \(index + 1), \"\(token)\", is not a byte as two hex digits"))
            }
            values.append(value)
        }
        guard offset + values.count <= ConfigSpace.maximumSize else {
            throw error(line, .beyondConfigSpace(offset: max(offset, ConfigSpace.maximumSize)))
        }
        guard var device = current else { throw error(line, .dataOutsideDevice) }
        let end = offset + values.count
        if device.bytes.count < end {
            device.bytes.append(contentsOf: repeatElement(nil, count: end - device.bytes.count))
            device.lineOfByte.append(contentsOf: repeatElement(0, count: end - device.lineOfByte.count))
        }
        for (i, value) in values.enumerated() {
            if device.bytes[offset + i] != nil {
                throw error(line, .repeatedOffset(offset: offset + i, firstLine: device.lineOfByte[offset + i]))
            }
            device.bytes[offset + i] = value
            device.lineOfByte[offset + i] = line
        }
        current = device
    }

    /// The offset of a data line's first word, `OFF:` with 2 to 8 hex digits; `nil` otherwise.
    private static func dataOffset(_ word: Substring) -> Int? {
        guard word.last == ":" else { return nil }
        let digits = word.dropLast()
        guard (2...8).contains(digits.utf8.count), digits.allSatisfy(\.isHexDigit) else { return nil }
        return Int(digits, radix: 16)
    }

    /// Whether a line's first word is shaped like a device address (hex digits, `:` and `.`, with
    /// at least one of each separator), so a malformed one is reported rather than skipped.
    private static func looksLikeAddress(_ word: Substring) -> Bool {
        word.contains(":") && word.contains(".") && word.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
    }

    private func error(_ line: Int?, _ reason: DumpParseError.Reason) -> DumpParseError {
        DumpParseError(file: file, line: line, reason: reason)
    }
}
