/// What config space alone says about one function: its identity, BARs and capabilities with
/// their decoded fields, built from a ``ConfigSpace``. `vfiokit inspect` shows one per device of
/// a dump; `vfiokit info`'s host report (VFIOHost's `DeviceReport`) lists its capabilities.
///
/// Building never fails: a field the source does not hold is left out (`nil`) and the reason is
/// added to ``problems``; a capability that cannot be decoded keeps its entry with a
/// ``CapabilityEntry/decodeError``.
public struct ConfigSpaceReport: Hashable, Sendable, Encodable {
    /// One entry of a capability chain, in walk order.
    public struct CapabilityEntry: Hashable, Sendable, Encodable {
        public let chain: CapabilityChain
        public let offset: Int
        public let id: Int
        public let name: String
        /// The capability version; extended capabilities only.
        public let version: Int?
        /// The decoded fields, where this module has a decoder for the ID.
        public let decoded: DecodedCapability?
        /// Why decoding failed, e.g. the structure runs past the bytes held.
        public let decodeError: String?

        init(
            chain: CapabilityChain, offset: Int, id: Int, name: String?, version: Int?,
            decode: () throws(ConfigSpaceError) -> DecodedCapability?
        ) {
            self.chain = chain
            self.offset = offset
            self.id = id
            self.name = name ?? "Unknown"
            self.version = version
            do {
                decoded = try decode()
                decodeError = nil
            } catch {
                decoded = nil
                decodeError = error.description
            }
        }
    }

    public let address: String
    /// The text that followed the address on the dump's header line, if any.
    public let title: String?
    public let vendorID: UInt16?
    public let deviceID: UInt16?
    public let revisionID: UInt8?
    public let classCode: ClassCode?
    public let className: String?
    /// Header type bits 6:0.
    public let headerType: UInt8?
    /// `endpoint`, `PCI bridge`, `CardBus bridge` or `unknown layout`.
    public let headerLayout: String?
    public let isMultiFunction: Bool?
    public let subsystem: SubsystemIDs?
    /// One past the last config byte held (64, 256, 4096 or less).
    public let configSize: Int
    public let bars: [BaseAddressRegister]
    public let capabilities: [CapabilityEntry]
    /// Everything that could not be read or decoded, and why capability walks stopped early.
    public let problems: [String]

    public init(address: PCIAddress, title: String? = nil, config: ConfigSpace) {
        var problems: [String] = []
        func field<T>(_ name: String, _ read: () throws -> T) -> T? {
            do { return try read() } catch {
                problems.append("\(name): \(error)")
                return nil
            }
        }
        self.address = address.description
        self.title = title.flatMap { $0.isEmpty ? nil : $0 }
        vendorID = field("vendor ID") { try config.vendorID }
        deviceID = field("device ID") { try config.deviceID }
        revisionID = field("revision ID") { try config.revisionID }
        classCode = field("class code") { try config.classCode }
        className = classCode?.baseClassName
        let header = field("header type") { try config.headerType }
        headerType = header?.type
        headerLayout = header?.layout.name
        isMultiFunction = header?.isMultiFunction
        subsystem = field("subsystem IDs") { try config.subsystem } ?? nil
        configSize = config.size
        bars = field("BARs") { try config.baseAddressRegisters() } ?? []

        let walk = config.capabilities
        capabilities = CapabilityEntry.entries(of: walk, in: config)
        self.problems = problems + walk.problems.map(\.description)
    }
}

extension ConfigSpaceReport.CapabilityEntry {
    /// Every capability `walk` found in `config`, standard then extended, each decoded where
    /// this module has a decoder.
    public static func entries(of walk: Capabilities, in config: ConfigSpace) -> [Self] {
        walk.standard.map { cap in
            Self(chain: .standard, offset: cap.offset, id: Int(cap.id.rawValue), name: cap.id.name, version: nil) {
                () throws(ConfigSpaceError) in try DecodedCapability(cap, in: config)
            }
        }
            + walk.extended.map { cap in
                Self(chain: .extended, offset: cap.offset, id: Int(cap.id.rawValue), name: cap.id.name, version: Int(cap.version)) {
                    () throws(ConfigSpaceError) in try DecodedCapability(cap, in: config)
                }
            }
    }
}
