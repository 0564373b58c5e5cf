/// Finds where JSON text stops being JSON (RFC 8259), so that a configuration's syntax error
/// is reported at its line and column; Foundation's decoder says only that the data is not
/// valid JSON.
enum JSONSyntax {
    /// The first syntax error in `bytes`: its line and column (1-based, the column in bytes)
    /// and what was expected there; nil when the text is JSON.
    static func firstError(in bytes: [UInt8]) -> (line: Int, column: Int, expected: String)? {
        var scanner = Scanner(bytes: bytes)
        let failure: String?
        do {
            try scanner.value(depth: 0)
            scanner.skipSpace()
            failure = scanner.position < bytes.count ? "the end of the file" : nil
        } catch {
            failure = error.expected
        }
        guard let failure else { return nil }
        let before = bytes[..<min(scanner.position, bytes.count)]
        let line = before.count(where: { $0 == UInt8(ascii: "\n") }) + 1
        let column = scanner.position - (before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
        return (line, column, failure)
    }

    private struct Failure: Error { let expected: String }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0
        /// Deeper nesting is refused rather than recursed into.
        static let maximumDepth = 256

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipSpace() {
            while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { position += 1 }
        }

        mutating func expect(_ c: Character, _ what: String) throws(Failure) {
            guard current == c.asciiValue else { throw Failure(expected: what) }
            position += 1
        }

        mutating func value(depth: Int) throws(Failure) {
            skipSpace()
            guard depth < Self.maximumDepth else { throw Failure(expected: "at most \(Self.maximumDepth) levels of nesting") }
            switch current {
            case UInt8(ascii: "{"):
                position += 1
                skipSpace()
                if current == UInt8(ascii: "}") { position += 1; return }
                while true {
                    skipSpace()
                    try string()
                    skipSpace()
                    try expect(":", "a colon after the key")
                    try value(depth: depth + 1)
                    skipSpace()
                    if current == UInt8(ascii: ",") { position += 1; continue }
                    try expect("}", "a comma or a closing brace")
                    return
                }
            case UInt8(ascii: "["):
                position += 1
                skipSpace()
                if current == UInt8(ascii: "]") { position += 1; return }
                while true {
                    try value(depth: depth + 1)
                    skipSpace()
                    if current == UInt8(ascii: ",") { position += 1; continue }
                    try expect("]", "a comma or a closing bracket")
                    return
                }
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case let c? where c == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c): try number()
            default: throw Failure(expected: "a value (an object, array, string, number, true, false or null)")
            }
        }

        mutating func literal(_ word: String) throws(Failure) {
            for c in word.utf8 {
                guard current == c else { throw Failure(expected: "a value (\(word)?)") }
                position += 1
            }
        }

        mutating func string() throws(Failure) {
            try expect("\"", "a string in double quotes")
            while let c = current {
                position += 1
                if c == UInt8(ascii: "\"") { return }
                if c < 0x20 { position -= 1; throw Failure(expected: "no control character inside a string") }
                if c == UInt8(ascii: "\\") {
                    guard let e = current, Array("\"\\/bfnrtu".utf8).contains(e) else {
                        throw Failure(expected: "a valid escape after a backslash")
                    }
                    position += 1
                    if e == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            guard let h = current, Character(UnicodeScalar(h)).isHexDigit else {
                                throw Failure(expected: "four hex digits after \\u")
                            }
                            position += 1
                        }
                    }
                }
            }
            throw Failure(expected: "the string's closing quote")
        }

        mutating func number() throws(Failure) {
            if current == UInt8(ascii: "-") { position += 1 }
            try digits()
            if current == UInt8(ascii: ".") { position += 1; try digits() }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                try digits()
            }
        }

        mutating func digits() throws(Failure) {
            let start = position
            while let c = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { position += 1 }
            guard position > start else { throw Failure(expected: "a digit") }
        }
    }
}
