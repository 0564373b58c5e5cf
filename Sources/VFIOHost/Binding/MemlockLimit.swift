#if canImport(Glibc)
import Glibc
#endif

/// The locked-memory limit (RLIMIT_MEMLOCK) that VFIO charges pinned DMA memory against.
public enum MemlockLimit: Equatable, Sendable {
    case unlimited
    case bytes(UInt64)

    /// What a driver is assumed to pin when the user gives no `--pin-size`: 64 MiB covers
    /// the sample drivers' queues and DMA buffers several times over. A driver that maps more
    /// (a VMM mapping guest RAM, a packet engine with big rings) should say how much.
    public static let defaultPinSize: UInt64 = 64 << 20

    /// This process's soft limit, which is what the kernel checks when VFIO pins pages
    /// (RLIM_INFINITY, all ones, is unlimited).
    public static func current() -> MemlockLimit {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0 else { return .unlimited }
        return limit.rlim_cur == rlim_t.max ? .unlimited : .bytes(UInt64(limit.rlim_cur))
    }

    /// Whether `size` bytes can be pinned under this limit.
    public func allows(_ size: UInt64) -> Bool {
        switch self {
        case .unlimited: true
        case let .bytes(limit): limit >= size
        }
    }
}

/// Parses a size such as `65536`, `512K`, `64M` or `2G` (powers of 1024).
public func parseByteSize(_ text: String) -> UInt64? {
    let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
    var digits = Substring(text)
    var scale: UInt64 = 1
    if let last = digits.last?.uppercased().first, let unit = units[last] {
        scale = unit
        digits = digits.dropLast()
    }
    guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = UInt64(digits) else { return nil }
    let (product, overflow) = value.multipliedReportingOverflow(by: scale)
    return overflow ? nil : product
}

/// `64 MiB`, `1.5 GiB`, `512 bytes`.
public func formatByteSize(_ bytes: UInt64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB"]
    guard bytes >= 1024 else { return "\(bytes) bytes" }
    var value = Double(bytes) / 1024
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    let rounded = (value * 10).rounded() / 10
    let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    return "\(text) \(units[unit])"
}
