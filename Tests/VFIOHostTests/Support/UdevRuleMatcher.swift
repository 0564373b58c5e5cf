import Glibc

/// A small udev rules interpreter for the tests: enough of udev(7) to check that the rule
/// files parse and to see what they do to a device.
///
/// Parsing is strict where udev is lenient: an unknown key, an operator a key does not take,
/// an unquoted value or a missing comma is an error, so a typo fails the test instead of
/// being skipped with a log line.
struct UdevRuleMatcher {
    struct ParseError: Error, CustomStringConvertible {
        let line: Int
        let message: String
        var description: String { "line \(line): \(message)" }
    }

    /// The device an event is about, as udev sees it.
    struct Device {
        var action: String
        var subsystem: String
        var kernel: String
        var attributes: [String: String] = [:]
    }

    /// What the rules did to the device.
    struct Outcome: Equatable {
        var group: String?
        var mode: String?
        var attributeWrites: [String: String] = [:]
        var run: [String] = []
    }

    private enum Operator: String { case equal = "==", notEqual = "!=", assign = "=", add = "+=", final = ":=" }

    private struct Pair {
        let key: String
        let argument: String?
        let op: Operator
        let value: String
    }

    private var rules: [(line: Int, pairs: [Pair])] = []

    private static let matchKeys: Set<String> = ["ACTION", "SUBSYSTEM", "KERNEL", "ATTR"]
    private static let assignKeys: Set<String> = ["GROUP", "MODE", "OWNER", "ATTR", "RUN", "GOTO", "LABEL"]

    init(parsing text: String) throws {
        var logical = ""
        var start = 0
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if logical.isEmpty { start = index + 1 }
            if raw.hasSuffix("\\") {
                logical += raw.dropLast()
                continue
            }
            logical += raw
            let trimmed = logical.drop(while: { $0 == " " || $0 == "\t" })
            if !trimmed.isEmpty, !trimmed.hasPrefix("#") { rules.append((start, try Self.parse(String(trimmed), line: start))) }
            logical = ""
        }
    }

    private static func parse(_ text: String, line: Int) throws -> [Pair] {
        var pairs: [Pair] = []
        var rest = Substring(text)
        while true {
            rest = rest.drop(while: { $0 == " " || $0 == "\t" })
            if rest.isEmpty { break }
            let key = rest.prefix(while: { $0.isUppercase || $0 == "_" })
            rest = rest.dropFirst(key.count)
            var argument: String?
            if rest.first == "{" {
                guard let close = rest.firstIndex(of: "}") else { throw ParseError(line: line, message: "unclosed { after \(key)") }
                argument = String(rest[rest.index(after: rest.startIndex)..<close])
                rest = rest[rest.index(after: close)...]
            }
            guard let op = [Operator.equal, .notEqual, .add, .final, .assign].first(where: { rest.hasPrefix($0.rawValue) }) else {
                throw ParseError(line: line, message: "no operator after \(key)")
            }
            rest = rest.dropFirst(op.rawValue.count)
            guard rest.first == "\"", let close = rest.dropFirst().firstIndex(of: "\"") else {
                throw ParseError(line: line, message: "value of \(key) is not quoted")
            }
            let value = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            let isMatch = op == .equal || op == .notEqual
            guard (isMatch ? matchKeys : assignKeys).contains(String(key)) else {
                throw ParseError(line: line, message: "\(key) does not take \(op.rawValue)")
            }
            if key == "ATTR", argument == nil { throw ParseError(line: line, message: "ATTR needs {name}") }
            if argument != nil, key != "ATTR", key != "RUN" {
                throw ParseError(line: line, message: "\(key) takes no {argument}")
            }
            pairs.append(Pair(key: String(key), argument: argument, op: op, value: value))
            rest = rest.drop(while: { $0 == " " || $0 == "\t" })
            if rest.isEmpty { break }
            guard rest.first == "," else { throw ParseError(line: line, message: "missing comma after \(key)") }
            rest = rest.dropFirst()
        }
        return pairs
    }

    /// Runs the rules in order against one event.
    func apply(to device: Device) -> Outcome {
        var outcome = Outcome()
        var skipTo: String?
        for rule in rules {
            if let label = skipTo {
                if rule.pairs.contains(where: { $0.key == "LABEL" && $0.value == label }) { skipTo = nil }
                continue
            }
            guard rule.pairs.allSatisfy({ matches($0, device) }) else { continue }
            for pair in rule.pairs where pair.op != .equal && pair.op != .notEqual {
                switch pair.key {
                case "GROUP": outcome.group = pair.value
                case "MODE": outcome.mode = pair.value
                case "ATTR": outcome.attributeWrites[pair.argument!] = pair.value
                case "RUN": outcome.run.append((pair.argument.map { "{\($0)}" } ?? "") + pair.value)
                case "GOTO": skipTo = pair.value
                default: break
                }
            }
        }
        return outcome
    }

    private func matches(_ pair: Pair, _ device: Device) -> Bool {
        let subject: String?
        switch pair.key {
        case "ACTION": subject = device.action
        case "SUBSYSTEM": subject = device.subsystem
        case "KERNEL": subject = device.kernel
        case "ATTR": subject = device.attributes[pair.argument ?? ""]
        default: return true  // an assignment
        }
        // udev: a value may list alternatives with |; each is a shell glob.
        let hit = subject.map { s in pair.value.split(separator: "|").contains { fnmatch(String($0), s, 0) == 0 } } ?? false
        return pair.op == .equal ? hit : !hit
    }
}
