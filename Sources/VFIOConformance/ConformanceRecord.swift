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

/// A difference the mock makes on purpose: in `scenario`, the first step where the records
/// part is `kernel` on the kernel's side and `mock` on the mock's. What follows in that record
/// is taken as its consequence.
public struct KnownDifference: Sendable {
    public let scenario: String
    public let kernel: String
    public let mock: String
    public let reason: String
}

/// The mock's deliberate differences from the Tests/VM kernels.
public let knownDifferences: [KnownDifference] = [
    // vfio_pci_core_setup_barmap/vfio_pci_ioctl_get_region_info: a memory BAR of a page or more is
    // mmappable. The mock's edu keeps its registers in a trapped BAR, because a register model
    // sees nothing of accesses made through a mapping.
    KnownDifference(
        scenario: "device-info", kernel: "  flags 0x7 size 0x100000 offset 0x0 caps []", mock: "  flags 0x3 size 0x100000 offset 0x0 caps []",
        reason: "edu's BAR0 is a register model the mock serves by pread/pwrite only, not mmap"),
    KnownDifference(
        scenario: "bars-mmap", kernel: "  flags 0x7 size 0x100000 offset 0x0 caps []", mock: "  flags 0x3 size 0x100000 offset 0x0 caps []",
        reason: "edu's BAR0 is a register model the mock serves by pread/pwrite only, not mmap"),
]

/// The differences between the kernel's records and the mock's, side by side: one entry per
/// record that differs (or exists on one side only), listing each step, `|` between the two
/// answers and `!` in front of a step that differs. Records whose first difference is a
/// ``KnownDifference`` go to `known` instead, headed by its reason.
public func conformanceDifferences(kernel: [ConformanceRecord], mock: [ConformanceRecord]) -> [String] {
    conformanceComparison(kernel: kernel, mock: mock).unexplained
}

public func conformanceComparison(kernel: [ConformanceRecord], mock: [ConformanceRecord]) -> (unexplained: [String], known: [String]) {
    func key(_ r: ConformanceRecord) -> String { "\(r.scenario) [\(r.mode)]" }
    let mockByKey = Dictionary(mock.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a })
    let kernelKeys = Set(kernel.map(key))
    var out: [String] = []
    var known: [String] = []
    for k in kernel {
        guard let m = mockByKey[key(k)] else {
            out.append("\(key(k)): run on the kernel only")
            continue
        }
        guard k.lines != m.lines else { continue }
        let first = zip(k.lines, m.lines).first { $0 != $1 }
        let reason = knownDifferences.first { $0.scenario == k.scenario && first?.0 == $0.kernel && first?.1 == $0.mock }?.reason
        let width = max(24, k.lines.map(\.count).max() ?? 0)
        var text = ["\(key(k)): kernel | mock"]
        for i in 0..<max(k.lines.count, m.lines.count) {
            let a = i < k.lines.count ? k.lines[i] : "(nothing)"
            let b = i < m.lines.count ? m.lines[i] : "(nothing)"
            text.append("\(a == b ? " " : "!") \(a.padding(toLength: width, withPad: " ", startingAt: 0)) | \(b)")
        }
        if let reason {
            known.append("known: \(key(k)): \(reason)")
        } else {
            out.append(text.joined(separator: "\n"))
        }
    }
    for m in mock where !kernelKeys.contains(key(m)) { out.append("\(key(m)): run on the mock only") }
    return (out, known)
}
