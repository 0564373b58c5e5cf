/// What one scenario did in one IOMMU mode and every answer the kernel gave, one line a step
/// (`MAP_DMA iova=0x100000 size=0x1000: ok`, `UNMAP_DMA ...: unmapped 0x1000`, `...: EINVAL`).
/// Two records are equal when the two kernels behaved the same.
public struct ConformanceRecord: Codable, Equatable, Sendable {
    public var scenario: String
    public var mode: String
    public var lines: [String]

    public init(scenario: String, mode: String, lines: [String]) {
        self.scenario = scenario
        self.mode = mode
        self.lines = lines
    }

    /// The record as text: a header line, then each step indented.
    public var text: String {
        (["\(scenario) [\(mode)]"] + lines.map { "  " + $0 }).joined(separator: "\n")
    }
}

/// The differences between the kernel's records and the mock's, side by side: one entry per
/// record that differs (or exists on one side only), listing each step, `|` between the two
/// answers and `!` in front of a step that differs.
public func conformanceDifferences(kernel: [ConformanceRecord], mock: [ConformanceRecord]) -> [String] {
    func key(_ r: ConformanceRecord) -> String { "\(r.scenario) [\(r.mode)]" }
    let mockByKey = Dictionary(mock.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a })
    let kernelKeys = Set(kernel.map(key))
    var out: [String] = []
    for k in kernel {
        guard let m = mockByKey[key(k)] else {
            out.append("\(key(k)): run on the kernel only")
            continue
        }
        guard k.lines != m.lines else { continue }
        let width = max(24, k.lines.map(\.count).max() ?? 0)
        var text = ["\(key(k)): kernel | mock"]
        for i in 0..<max(k.lines.count, m.lines.count) {
            let a = i < k.lines.count ? k.lines[i] : "(nothing)"
            let b = i < m.lines.count ? m.lines[i] : "(nothing)"
            text.append("\(a == b ? " " : "!") \(a.padding(toLength: width, withPad: " ", startingAt: 0)) | \(b)")
        }
        out.append(text.joined(separator: "\n"))
    }
    for m in mock where !kernelKeys.contains(key(m)) { out.append("\(key(m)): run on the mock only") }
    return out
}
