/// An entry of the standard capability chain.
public struct Capability: Hashable, Sendable {
    /// Config offset of the entry's ID byte.
    public let offset: Int
    public let id: CapabilityID
}

/// An entry of the extended capability chain.
public struct ExtendedCapability: Hashable, Sendable {
    /// Config offset of the entry's 32-bit header.
    public let offset: Int
    public let id: ExtendedCapabilityID
    /// The capability version, header bits 19:16.
    public let version: UInt8
}

/// The result of walking a function's two capability chains, in walk order.
///
/// Guarantees, whatever the bytes:
/// - the walk ends: each offset is visited at most once, so the standard list has at most
///   ``maximumStandardCount`` entries and the extended list at most ``maximumExtendedCount``;
/// - every listed entry's header lies within the bytes held;
/// - a malformed chain (a loop, a pointer into the header or past the data, unavailable bytes)
///   stops that chain's walk and is recorded in ``problems``; nothing traps.
///
/// The standard chain starts at the capability pointer the header type defines (0x34, or 0x14 for
/// CardBus bridges) when Status bit 4 says there is a list. The extended chain is walked only for
/// functions with a PCI Express capability whose source holds offset 0x100: conventional devices
/// often alias their first 256 bytes there, which must not be read as capabilities.
public struct Capabilities: Hashable, Sendable {
    public static let maximumStandardCount = (0x100 - 0x40) / 4
    public static let maximumExtendedCount = (ConfigSpace.maximumSize - ConfigSpace.conventionalSize) / 4

    public private(set) var standard: [Capability] = []
    public private(set) var extended: [ExtendedCapability] = []
    /// Why a chain's walk stopped early; empty for well-formed chains.
    public private(set) var problems: [CapabilityChainProblem] = []

    public init(walking config: ConfigSpace) {
        walkStandard(config)
        if first(.pciExpress) != nil { walkExtended(config) }
    }

    /// The first standard capability with `id`, in walk order.
    public func first(_ id: CapabilityID) -> Capability? { standard.first { $0.id == id } }
    /// The first extended capability with `id`, in walk order.
    public func first(_ id: ExtendedCapabilityID) -> ExtendedCapability? { extended.first { $0.id == id } }
    /// Every extended capability with `id` (DVSEC and vendor-specific ones can repeat).
    public func all(_ id: ExtendedCapabilityID) -> [ExtendedCapability] { extended.filter { $0.id == id } }

    private mutating func walkStandard(_ config: ConfigSpace) {
        let headerType: HeaderType
        let status: UInt16
        do throws(ConfigSpaceError) {
            headerType = try config.headerType
            status = try config.status
        } catch {
            return problems.append(.unavailable(.standard, offset: error.offset))
        }
        guard let pointerRegister = headerType.capabilityPointerOffset else {
            return problems.append(.unknownHeaderLayout(type: headerType.type))
        }
        guard status & ConfigSpace.statusCapabilityListBit != 0 else { return }

        var visited = [Bool](repeating: false, count: ConfigSpace.conventionalSize)
        var pointerOffset = pointerRegister
        guard var target = try? Int(config.uint8(at: pointerRegister) & ~3) else {
            return problems.append(.unavailable(.standard, offset: pointerRegister))
        }
        while target != 0 {
            if let problem = Self.problem(
                following: .standard, from: pointerOffset, to: target, visited: visited, size: config.size)
            {
                return problems.append(problem)
            }
            let id: UInt8
            let next: UInt8
            do throws(ConfigSpaceError) {
                id = try config.uint8(at: target)
                next = try config.uint8(at: target + 1)
            } catch {
                return problems.append(.unavailable(.standard, offset: error.offset))
            }
            if id == 0xff {
                return problems.append(.invalidEntry(.standard, offset: target, value: UInt32(id)))
            }
            visited[target] = true
            standard.append(Capability(offset: target, id: CapabilityID(rawValue: id)))
            pointerOffset = target + 1
            target = Int(next & ~3)
        }
    }

    private mutating func walkExtended(_ config: ConfigSpace) {
        let first = ConfigSpace.conventionalSize
        // A source without offset 0x100 (a 256-byte read or dump) has no extended space to walk.
        guard config.isAvailable(first..<first + 4) else { return }
        var visited = [Bool](repeating: false, count: ConfigSpace.maximumSize)
        var offset = first
        while true {
            guard let header = try? config.uint32(at: offset) else {
                return problems.append(.unavailable(.extended, offset: offset))
            }
            // 0 or all-ones at 0x100 means "no extended capabilities"; later it ends a broken chain.
            if header == 0 || header == 0xffff_ffff {
                if offset != first { problems.append(.invalidEntry(.extended, offset: offset, value: header)) }
                return
            }
            visited[offset] = true
            extended.append(
                ExtendedCapability(
                    offset: offset, id: ExtendedCapabilityID(rawValue: UInt16(header & 0xffff)),
                    version: UInt8(header >> 16 & 0xf)))
            let next = Int(header >> 20) & ~3
            if next == 0 { return }
            if let problem = Self.problem(following: .extended, from: offset, to: next, visited: visited, size: config.size) {
                return problems.append(problem)
            }
            offset = next
        }
    }
}

extension Capabilities {
    /// Why the pointer at `pointerOffset` cannot be followed to `target` in `chain`, or nil when
    /// it can: the target must lie past the chain's header area, not be visited yet, and hold a
    /// whole entry header (2 bytes standard, 4 extended) within the `size` bytes held.
    private static func problem(
        following chain: CapabilityChain, from pointerOffset: Int, to target: Int, visited: [Bool], size: Int
    ) -> CapabilityChainProblem? {
        let (lowest, headerBytes) =
            switch chain {
            case .standard: (0x40, 2)
            case .extended: (ConfigSpace.conventionalSize, 4)
            }
        if target < lowest { return .pointerIntoHeader(chain, pointerOffset: pointerOffset, target: target) }
        if visited[target] { return .loop(chain, pointerOffset: pointerOffset, target: target) }
        if target + headerBytes > size {
            return .pointerOutOfBounds(chain, pointerOffset: pointerOffset, target: target, size: size)
        }
        return nil
    }
}

extension ConfigSpace {
    /// Walks both capability chains; see ``Capabilities``.
    public var capabilities: Capabilities { Capabilities(walking: self) }
}
