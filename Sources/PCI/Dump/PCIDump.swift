import Foundation

/// The devices of a config-space dump, as `lspci -x`, `-xxx` or `-xxxx` prints it and libpci's
/// dump backend reads it.
///
/// The format: a device starts with a header line whose first word is its address (`bb:dd.f` or
/// `dddd:bb:dd.f`); data lines `OFF: xx xx …` give bytes from hex offset `OFF`; a blank line ends
/// the device. Other lines, such as `lspci -vvv` text, are ignored. A device holds exactly the bytes
/// its data lines give: the rest of its ``ConfigSpace`` is unavailable, not zero.
///
/// Parsing is stricter than libpci where that catches a damaged file: a header without data lines,
/// a malformed or overlapping data line, data outside a device, or a repeated device is a
/// ``DumpParseError`` naming the line. Parsing never traps, whatever the input.
public struct PCIDump: Hashable, Sendable {
    /// One device of the dump.
    public struct Device: Hashable, Sendable {
        public let address: PCIAddress
        /// The header line's text after the address, e.g. `Host bridge: …` or `0600: 1002:7911`.
        public let title: String
        public let config: ConfigSpace
        /// The 1-based line of the device's header.
        public let line: Int
    }

    /// Files at least this large are refused unread: a dump of 4096 bytes for each of 256 buses'
    /// functions is well under it.
    public static let maximumFileSize = 64 << 20

    /// The name errors and reports use for the file.
    public let name: String
    /// The devices in file order.
    public let devices: [Device]

    /// Parses dump text. `name` is used in errors.
    public init(parsing text: String, name: String) throws(DumpParseError) {
        var parser = DumpTextParser(file: name)
        // "\r\n" is one Character in Swift, so it is a separator of its own.
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (index, line) in lines.enumerated() {
            try parser.consume(line, number: index + 1)
        }
        self.name = name
        devices = try parser.finish()
    }

    /// Reads and parses the dump file at `path`; errors name it as given.
    public init(contentsOfFile path: String) throws(DumpParseError) {
        let data: Data
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            // Cannot fail in a way that matters: the file is only read, and all of it is read
            // (or the read's error thrown) before this close.
            defer { try? handle.close() }
            data = try handle.read(upToCount: Self.maximumFileSize) ?? Data()
        } catch {
            throw DumpParseError(file: path, line: nil, reason: .unreadable(Self.explain(error)))
        }
        guard data.count < Self.maximumFileSize else {
            throw DumpParseError(file: path, line: nil, reason: .tooLarge(byteCount: data.count))
        }
        try self.init(parsing: String(decoding: data, as: UTF8.self), name: path)
    }

    private static func explain(_ error: any Error) -> String {
        let error = error as NSError
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
            let code = POSIXErrorCode(rawValue: Int32(underlying.code))
        {
            return String(cString: strerror(code.rawValue))
        }
        return error.localizedDescription
    }
}
