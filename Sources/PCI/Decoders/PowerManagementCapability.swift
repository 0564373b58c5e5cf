/// The Power Management capability (ID 0x01): supported and current D-states.
public struct PowerManagementCapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// A function power state, PMCSR bits 1:0.
    public enum PowerState: String, Hashable, Sendable, Encodable {
        case d0 = "D0", d1 = "D1", d2 = "D2", d3hot = "D3hot"
    }

    /// Config offset of the capability.
    public let offset: Int
    /// Power Management Capabilities bits 2:0 (1–3).
    public let version: Int
    /// PMC bit 9.
    public let supportsD1: Bool
    /// PMC bit 10.
    public let supportsD2: Bool
    /// PMC bits 15:11: the states that can assert PME#, bit 0 for D0 up to bit 4 for D3cold.
    public let pmeSupport: UInt8
    /// PMCSR bits 1:0.
    public let powerState: PowerState
    /// PMCSR bit 3: going from D3hot to D0 keeps the function's state.
    public let noSoftReset: Bool
    /// PMCSR bit 8.
    public let isPMEEnabled: Bool
    /// PMCSR bit 15.
    public let isPMEStatusSet: Bool

    /// Offset of the Power Management Control/Status register.
    public var controlStatusOffset: Int { offset + 4 }

    /// Decodes the Power Management capability at `offset`; throws if it is another capability
    /// or not held.
    public init(_ config: ConfigSpace, at offset: Int) throws(ConfigSpaceError) {
        try config.expectCapability(.powerManagement, at: offset)
        self.offset = offset
        let capabilities = try config.uint16(at: offset + 2)
        let controlStatus = try config.uint16(at: offset + 4)
        version = Int(capabilities & 7)
        supportsD1 = capabilities.bit(9)
        supportsD2 = capabilities.bit(10)
        pmeSupport = UInt8(capabilities >> 11)
        powerState = [.d0, .d1, .d2, .d3hot][Int(controlStatus & 3)]
        noSoftReset = controlStatus.bit(3)
        isPMEEnabled = controlStatus.bit(8)
        isPMEStatusSet = controlStatus.bit(15)
    }

    public var description: String {
        let states = ["D0", "D1", "D2", "D3hot", "D3cold"].enumerated().filter { pmeSupport.bit($0.offset) }.map(\.element)
        return "Power Management v\(version): now \(powerState.rawValue)"
            + (supportsD1 ? ", D1" : "") + (supportsD2 ? ", D2" : "")
            + ", PME from \(states.isEmpty ? "none" : states.joined(separator: "/"))"
            + (isPMEEnabled ? ", PME enabled" : "") + (noSoftReset ? ", no soft reset" : "")
    }
}
