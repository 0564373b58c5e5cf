import Foundation
import PCI

/// What `lspci -nvvv` printed for each device, split into per-device blocks by address.
struct LSPCIText {
    private(set) var blocks: [PCIAddress: [Substring]] = [:]

    init(_ text: String) throws {
        var current: PCIAddress?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty {
                current = nil
            } else if line.first != "\t", let word = line.split(separator: " ").first {
                let address = try PCIAddress(parsing: String(word))
                current = address
                blocks[address] = [line]
            } else if let current {
                blocks[current, default: []].append(line)
            }
        }
    }

    /// The capability lines (`Capabilities: [OFF] …` or `[OFF vN] …`) of a device, each with the
    /// lines indented under it.
    func capabilities(of address: PCIAddress) -> [(offset: Int, extended: Bool, text: Substring, body: [Substring])] {
        var result: [(offset: Int, extended: Bool, text: Substring, body: [Substring])] = []
        for line in blocks[address] ?? [] {
            let trimmed = line.drop { $0 == "\t" }
            if trimmed.hasPrefix("Capabilities: ["), line.hasPrefix("\tCap"),
                let close = trimmed.firstIndex(of: "]")
            {
                let inside = trimmed[trimmed.index(trimmed.startIndex, offsetBy: 15)..<close]
                let parts = inside.split(separator: " ")
                guard let offset = Int(parts[0], radix: 16) else { continue }
                result.append((offset, parts.count > 1, trimmed[trimmed.index(after: close)...].dropFirst(), []))
            } else if line.hasPrefix("\t\t"), !result.isEmpty {
                result[result.count - 1].body.append(trimmed)
            }
        }
        return result
    }

    /// The text of the first capability of `address` at `offset`.
    func capability(of address: PCIAddress, at offset: Int) -> (text: Substring, body: [Substring])? {
        capabilities(of: address).first { $0.offset == offset }.map { ($0.text, $0.body) }
    }
}

/// `Key=value` and `Key: value` lookups in lspci's text, e.g. `Count=9` or `VF offset: 16`.
extension Substring {
    func value(after key: String) -> Substring? {
        guard let range = range(of: key) else { return nil }
        return self[range.upperBound...].prefix { !" ,)\t".contains($0) }
    }

    func flag(_ name: String) -> Bool? {
        if range(of: name + "+") != nil { return true }
        if range(of: name + "-") != nil { return false }
        return nil
    }
}
