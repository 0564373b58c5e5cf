/// A PCI function's address: `domain:bus:device.function`, as sysfs and lspci print it.
///
/// Parsing is strict: the domain is optional (1–8 hex digits, 0 when absent), the bus is
/// two hex digits, the device two hex digits up to 0x1f, and the function one digit up to 7.
/// Anything else, including path characters such as `/` or `..`, is rejected with a
/// ``PCIAddressError`` that quotes the input, so an address is always safe to splice into a
/// sysfs path.
public struct PCIAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let domain: UInt32
    public let bus: UInt8
    public let device: UInt8
    public let function: UInt8

    /// Creates an address from its parts; fails if `device` > 0x1f or `function` > 7.
    public init(domain: UInt32 = 0, bus: UInt8, device: UInt8, function: UInt8) throws(PCIAddressError) {
        guard device <= 0x1f else {
            throw .malformed(input: "\(bus):\(device).\(function)", reason: "device number \(device) is above 0x1f")
        }
        guard function <= 7 else {
            throw .malformed(input: "\(bus):\(device).\(function)", reason: "function number \(function) is above 7")
        }
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Parses `dddd:bb:dd.f` or `bb:dd.f`.
    public init(parsing text: String) throws(PCIAddressError) {
        func fail(_ reason: String) -> PCIAddressError { .malformed(input: text, reason: reason) }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else {
            throw fail("expected [domain:]bus:device.function, like 0000:03:00.0")
        }
        var domain: UInt32 = 0
        if parts.count == 3 {
            guard let d = Self.hex(parts[0], digits: 1...8) else { throw fail("domain must be 1 to 8 hex digits") }
            domain = UInt32(d)
        }
        guard let bus = Self.hex(parts[parts.count - 2], digits: 2...2) else {
            throw fail("bus must be 2 hex digits")
        }
        let slot = parts[parts.count - 1].split(separator: ".", omittingEmptySubsequences: false)
        guard slot.count == 2 else { throw fail("expected device.function after the bus") }
        guard let device = Self.hex(slot[0], digits: 2...2), device <= 0x1f else {
            throw fail("device must be 2 hex digits from 00 to 1f")
        }
        guard let function = Self.hex(slot[1], digits: 1...1), function <= 7 else {
            throw fail("function must be one digit from 0 to 7")
        }
        self.domain = domain
        self.bus = UInt8(bus)
        self.device = UInt8(device)
        self.function = UInt8(function)
    }

    private static func hex(_ s: Substring, digits: ClosedRange<Int>) -> UInt64? {
        guard digits.contains(s.utf8.count), s.utf8.allSatisfy({ $0 < 0x80 && Character(Unicode.Scalar($0)).isHexDigit })
        else { return nil }
        return UInt64(s, radix: 16)
    }

    /// The canonical sysfs form, `0000:03:00.0`.
    public var description: String {
        hexString(domain, width: 4) + ":" + hexString(bus, width: 2) + ":" + hexString(device, width: 2)
            + "." + String(function)
    }

    public static func < (a: PCIAddress, b: PCIAddress) -> Bool {
        (a.domain, a.bus, a.device, a.function) < (b.domain, b.bus, b.device, b.function)
    }
}

/// Why a PCI address was rejected.
public enum PCIAddressError: Error, Hashable, Sendable, CustomStringConvertible {
    case malformed(input: String, reason: String)

    public var description: String {
        switch self {
        case let .malformed(input, reason): "invalid PCI address \"\(input)\": \(reason)"
        }
    }
}

/// Lower-case hex, zero-padded to `width` digits.
func hexString<T: BinaryInteger>(_ value: T, width: Int) -> String {
    let s = String(value, radix: 16)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}
