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

    var key: String { "\(scenario) [\(mode)]" }
}

/// A difference the mock makes on purpose: in `scenario`, the consecutive steps `kernel` on
/// the kernel's side stand where the mock's record holds `mock`. It excuses those steps only:
/// every step before and after them is compared as any other.
public struct KnownDifference: Sendable {
    public let scenario: String
    public let kernel: [String]
    public let mock: [String]
    public let reason: String

    public init(scenario: String, kernel: [String], mock: [String], reason: String) {
        self.scenario = scenario
        self.kernel = kernel
        self.mock = mock
        self.reason = reason
    }
}

/// The mock's deliberate differences from the Tests/VM kernels: none. An entry belongs here
/// only for a property of a machine the profile cannot take from the guest; a shortcut of the
/// mock is fixed in the mock instead. (The last ones, edu's BAR0 served by pread/pwrite only,
/// went when register BARs became mappable through VFIOMock's trapped mappings.)
public let knownDifferences: [KnownDifference] = []

/// The outcome of comparing the kernel's records with the mock's.
public struct ConformanceComparison: Sendable {
    /// Records present on both sides, every step of each compared.
    public var recordsCompared = 0
    /// One entry per record that differs outside its known differences (or exists on one
    /// side only): each step side by side, `|` between the answers, `!` before a step that
    /// differs and `~` before one a ``KnownDifference`` excuses.
    public var differences: [String] = []
    /// One line per ``KnownDifference`` applied, naming the record and the reason.
    public var known: [String] = []
}

/// The differences between the kernel's records and the mock's, side by side.
public func conformanceDifferences(kernel: [ConformanceRecord], mock: [ConformanceRecord]) -> [String] {
    conformanceComparison(kernel: kernel, mock: mock).differences
}

/// Compares every step of every record: equal steps pass, a run of steps a
/// ``KnownDifference`` of `known` describes is excused and the comparison goes on after it,
/// anything else makes the record a difference.
public func conformanceComparison(
    kernel: [ConformanceRecord], mock: [ConformanceRecord],
    known: [KnownDifference] = knownDifferences
) -> ConformanceComparison {
    let mockByKey = Dictionary(mock.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
    let kernelKeys = Set(kernel.map(\.key))
    var result = ConformanceComparison()
    for k in kernel {
        guard let m = mockByKey[k.key] else {
            result.differences.append("\(k.key): run on the kernel only")
            continue
        }
        result.recordsCompared += 1
        let walk = RecordWalk(kernel: k, mock: m, known: known.filter { $0.scenario == k.scenario })
        if walk.differs {
            result.differences.append(walk.text)
        }
        result.known += walk.excused.map { "known: \(k.key): \($0.reason)" }
    }
    for m in mock where !kernelKeys.contains(m.key) { result.differences.append("\(m.key): run on the mock only") }
    return result
}

/// One record pair walked step by step.
private struct RecordWalk {
    private(set) var differs = false
    private(set) var excused: [KnownDifference] = []
    private var rows: [(mark: Character, kernel: String, mock: String)] = []
    private let key: String

    init(kernel k: ConformanceRecord, mock m: ConformanceRecord, known: [KnownDifference]) {
        key = k.key
        var i = 0, j = 0
        while i < k.lines.count || j < m.lines.count {
            if i < k.lines.count, j < m.lines.count, k.lines[i] == m.lines[j] {
                rows.append((" ", k.lines[i], m.lines[j]))
                i += 1
                j += 1
            } else if let d = known.first(where: {
                !($0.kernel.isEmpty && $0.mock.isEmpty) && k.lines[i...].starts(with: $0.kernel) && m.lines[j...].starts(with: $0.mock)
            }) {
                for r in 0..<max(d.kernel.count, d.mock.count) {
                    rows.append(("~", r < d.kernel.count ? d.kernel[r] : "", r < d.mock.count ? d.mock[r] : ""))
                }
                excused.append(d)
                i += d.kernel.count
                j += d.mock.count
            } else {
                differs = true
                rows.append(("!", i < k.lines.count ? k.lines[i] : "(nothing)", j < m.lines.count ? m.lines[j] : "(nothing)"))
                i = min(i + 1, k.lines.count)
                j = min(j + 1, m.lines.count)
            }
        }
    }

    var text: String {
        let width = max(24, rows.map(\.kernel.count).max() ?? 0)
        let body = rows.map { "\($0.mark) \($0.kernel.padding(toLength: width, withPad: " ", startingAt: 0)) | \($0.mock)" }
        return (["\(key): kernel | mock"] + body).joined(separator: "\n")
    }
}
