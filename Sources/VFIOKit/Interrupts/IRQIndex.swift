import CVFIO

/// The interrupt kinds VFIO numbers, in VFIO_PCI_*_IRQ_INDEX order.
public enum IRQIndex: Int, Sendable, CaseIterable, CustomStringConvertible {
    case intx = 0, msi = 1, msix = 2, err = 3, req = 4

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
    public let index: IRQIndex
    /// How many vectors the index has (0 when the device lacks it).
    public let count: Int
    public let flags: Flags

    /// How the index behaves (VFIO_IRQ_INFO_*).
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let eventfd = Flags(rawValue: UInt32(VFIO_IRQ_INFO_EVENTFD))
        public static let maskable = Flags(rawValue: UInt32(VFIO_IRQ_INFO_MASKABLE))
        public static let automasked = Flags(rawValue: UInt32(VFIO_IRQ_INFO_AUTOMASKED))
        /// Vectors cannot be added while the index is enabled (no dynamic MSI-X).
        public static let noResize = Flags(rawValue: UInt32(VFIO_IRQ_INFO_NORESIZE))
    }

    public init(index: IRQIndex, count: Int, flags: Flags) {
        self.index = index
        self.count = count
        self.flags = flags
    }
}
