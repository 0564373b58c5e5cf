import FoundationEssentials

/// The configuration file's keys checked against those the daemon knows
/// (`ConfigurationFile.CodingKeys`, `ConfigurationFile.Entry.CodingKeys`): an unknown key is
/// named with where it is and, when one is close, the key that was probably meant.
enum ConfigurationKeys {
    /// Throws ``DaemonError/badConfiguration(path:reason:)`` for the first unknown key.
    static func check(_ data: Data, path: String) throws(DaemonError) {
        do { _ = try JSONDecoder().decode(Audit.self, from: data) } catch let unknown as Unknown {
            let suggestion = closest(to: unknown.key, in: unknown.known).map { " (did you mean \"\($0)\"?)" } ?? ""
            throw .badConfiguration(
                path: path,
                reason:
                    "unknown key \"\(unknown.key)\" \(unknown.place)\(suggestion); the keys there are \(unknown.known.joined(separator: ", "))"
            )
        } catch {
            throw .badConfiguration(path: path, reason: describe(error))
        }
    }

    /// A decoding error as a person reads it: where in the file, and what was wrong.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func place(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "at the top level" : "at " + path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case let .typeMismatch(type, context): return "\(place(context.codingPath)): expected \(kind(type))"
        case let .valueNotFound(type, context): return "\(place(context.codingPath)): expected \(kind(type)), not null"
        case let .keyNotFound(key, context): return "\(place(context.codingPath)): \"\(key.stringValue)\" is required"
        case let .dataCorrupted(context): return "\(place(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    private static func kind(_ type: Any.Type) -> String {
        switch type {
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        case is [ConfigurationFile.Entry].Type, is [Any].Type: "an array"
        default: "an object"
        }
    }

    private struct Unknown: Error {
        let key: String
        let place: String
        let known: [String]
    }

    private struct AnyKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Walks the file as the daemon reads it, throwing ``Unknown`` at the first unknown key.
    private struct Audit: Decodable {
        init(from decoder: any Decoder) throws {
            let top = try decoder.container(keyedBy: AnyKey.self)
            try Self.refuseUnknown(top.allKeys, known: ConfigurationFile.CodingKeys.self, place: "at the top level")
            guard top.contains(AnyKey(stringValue: "devices")) else { return }
            var devices = try top.nestedUnkeyedContainer(forKey: AnyKey(stringValue: "devices"))
            while !devices.isAtEnd {
                let index = devices.currentIndex
                let entry = try devices.nestedContainer(keyedBy: AnyKey.self)
                try Self.refuseUnknown(entry.allKeys, known: ConfigurationFile.Entry.CodingKeys.self, place: "in devices[\(index)]")
            }
        }

        static func refuseUnknown<Keys: CodingKey & CaseIterable>(_ keys: [AnyKey], known: Keys.Type, place: String) throws {
            let names = known.allCases.map(\.stringValue)
            if let key = keys.map(\.stringValue).sorted().first(where: { !names.contains($0) }) {
                throw Unknown(key: key, place: place, known: names)
            }
        }
    }

    /// The known key within two edits of `key` (a typo, a missing or doubled letter), if one is.
    static func closest(to key: String, in known: [String]) -> String? {
        known.map { ($0, distance(key.lowercased(), $0)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
    }

    /// The Levenshtein distance between `a` and `b`.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var row = [i + 1]
            for (j, y) in b.enumerated() { row.append(min(previous[j + 1] + 1, row[j] + 1, previous[j] + (x == y ? 0 : 1))) }
            previous = row
        }
        return previous[b.count]
    }
}
