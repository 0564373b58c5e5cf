/// The name of a kernel driver, as in `/sys/bus/pci/drivers/NAME`.
///
/// Only letters, digits, `_`, `-` and `.` are accepted, and never `.` or `..` alone, so a name
/// is always safe to splice into a sysfs path — whether it came from the command line, a state
/// file or a symlink the kernel made.
public struct DriverName: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The validated name.
    public let rawValue: String

    /// Validates `name`: 1 to 64 bytes of letters, digits, `_`, `-` and `.`, and not `.` or `..`;
    /// throws ``DriverNameError/invalid(_:reason:)`` saying which rule it broke.
    public init(_ name: String) throws(DriverNameError) {
        guard !name.isEmpty, name.utf8.count <= 64 else { throw .invalid(name, reason: "must be 1 to 64 characters") }
        guard name != ".", name != ".." else { throw .invalid(name, reason: "is a path component, not a driver") }
        guard name.utf8.allSatisfy(Self.allowed) else {
            throw .invalid(name, reason: "may hold only letters, digits, '_', '-' and '.'")
        }
        rawValue = name
    }

    private init(known name: String) { rawValue = name }

    private static func allowed(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d
            || c == 0x2e
    }

    /// `vfio-pci`, the VFIO driver for PCI devices.
    public static let vfioPCI = DriverName(known: "vfio-pci")
    /// `uio_pci_generic`, the UIO driver for PCI devices: INTx only, and no IOMMU.
    public static let uioPCIGeneric = DriverName(known: "uio_pci_generic")
    /// `pci-stub`, which claims a device and does nothing with it.
    public static let pciStub = DriverName(known: "pci-stub")
    /// `pcieport`, the PCIe port services driver, bound to root and switch ports.
    public static let pcieport = DriverName(known: "pcieport")

    /// Whether a device bound to this driver leaves its IOMMU group usable by VFIO.
    ///
    /// This follows the kernel: drivers that set `driver_managed_dma` (vfio-pci and its variant
    /// drivers such as `mlx5_vfio_pci`, `pci-stub`, `pcieport`) do not claim the group's DMA,
    /// so they do not stop another member from being opened through VFIO.
    public var keepsGroupViable: Bool { isVFIO || self == .pciStub || self == .pcieport }

    /// Whether this is vfio-pci or one of its variant drivers (whose names end in `vfio_pci`).
    public var isVFIO: Bool { self == .vfioPCI || rawValue.hasSuffix("vfio_pci") }

    /// Whether this driver hands the device to userspace: VFIO or `uio_pci_generic`.
    public var isUserspaceDriver: Bool { isVFIO || self == .uioPCIGeneric }

    /// The name itself.
    public var description: String { rawValue }

    /// Byte-wise order of the names.
    public static func < (a: DriverName, b: DriverName) -> Bool { a.rawValue < b.rawValue }

    /// Decodes a name from a single string, validated as ``init(_:)`` does; throws
    /// `DecodingError.dataCorrupted` naming the rule it broke.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    /// Encodes the name as a single string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Why a driver name was rejected.
public enum DriverNameError: Error, Equatable, CustomStringConvertible {
    /// The name, and the rule it broke as the end of a sentence starting "it " ("must be 1 to 64 characters").
    case invalid(String, reason: String)

    /// `invalid driver name "NAME": it REASON`.
    public var description: String {
        switch self {
        case let .invalid(name, reason): "invalid driver name \"\(name)\": it \(reason)"
        }
    }
}
