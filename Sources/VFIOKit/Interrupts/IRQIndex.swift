import CVFIO

/// The interrupt kinds VFIO numbers, in VFIO_PCI_*_IRQ_INDEX order.
public enum IRQIndex: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// VFIO's `VFIO_PCI_*_IRQ_INDEX` numbers: INTx, MSI, MSI-X, ERR (AER error notification) and
    /// REQ (the kernel asking for the device back).
    case intx = 0, msi = 1, msix = 2, err = 3, req = 4

    /// The index as the PCI specification names it: `INTx`, `MSI`, `MSI-X`, `ERR`, `REQ`.
    public var description: String {
        switch self {
        case .intx: "INTx"
        case .msi: "MSI"
        case .msix: "MSI-X"
        case .err: "ERR"
        case .req: "REQ"
        }
    }
}

/// What the kernel reports for one interrupt index (VFIO_DEVICE_GET_IRQ_INFO).
public struct IRQInfo: Sendable, Equatable {
    /// The index described.
    public let index: IRQIndex
    /// How many vectors the index has (0 when the device lacks it).
    public let count: Int
    /// How the index's vectors behave.
    public let flags: Flags

    /// How the index behaves (VFIO_IRQ_INFO_*).
    public struct Flags: OptionSet, Sendable, Hashable {
        /// The kernel's `flags` bits, as reported (unknown bits kept).
        public let rawValue: UInt32
        /// Flags from the kernel's bits, unknown ones kept.
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Vectors can signal an eventfd (VFIO_IRQ_INFO_EVENTFD).
        public static let eventfd = Flags(rawValue: UInt32(VFIO_IRQ_INFO_EVENTFD))
        /// Vectors can be masked and unmasked through VFIO (VFIO_IRQ_INFO_MASKABLE).
        public static let maskable = Flags(rawValue: UInt32(VFIO_IRQ_INFO_MASKABLE))
        /// The kernel masks a vector when it fires, and it stays masked until unmasked (INTx's
        /// level-triggered behaviour, VFIO_IRQ_INFO_AUTOMASKED).
        public static let automasked = Flags(rawValue: UInt32(VFIO_IRQ_INFO_AUTOMASKED))
        /// Vectors cannot be added while the index is enabled (no dynamic MSI-X).
        public static let noResize = Flags(rawValue: UInt32(VFIO_IRQ_INFO_NORESIZE))
    }

    /// A description as the kernel (or a test) gives it; nothing is checked.
    public init(index: IRQIndex, count: Int, flags: Flags) {
        self.index = index
        self.count = count
        self.flags = flags
    }
}
