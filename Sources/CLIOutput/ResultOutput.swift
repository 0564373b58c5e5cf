import Foundation

/// Prints a result as sorted-key JSON or as aligned text lines: the one output shape of the
/// measuring commands of `vfiokit` and `vfiokit-bench`.
public func printResult<T: Encodable>(_ result: T, json: Bool, lines: [String]) throws {
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
    } else {
        lines.forEach { print($0) }
    }
}

/// A figure with two decimals, for the text output.
public func fixed(_ value: Double) -> String { String(format: "%.2f", value) }

/// Writes a line to standard error.
public func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}
