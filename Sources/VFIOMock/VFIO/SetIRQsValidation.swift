import SystemPackage
import CVFIO

/// The header of a `VFIO_DEVICE_SET_IRQS` argument, read and checked as
/// `vfio_set_irqs_validate_and_prepare` does.
struct SetIRQsRequest {
    let flags: UInt32
    let index: UInt32
    let start: UInt32
    let count: UInt32
    /// The payload: `count` bools or eventfds after the 20-byte header.
    let data: [UInt8]

    static let headerSize = 20
    static let dataTypeMask = UInt32(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD)
    static let actionTypeMask = UInt32(VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER)

    /// Reads and validates the request against the `count` of interrupts at its index:
    /// argsz, index, flags, `start + count`, and a payload of `count` elements of its type.
    init(_ arg: UserPointer, irqCount: (UInt32) -> Int, indexCount: UInt32) throws(Errno) {
        let argsz: UInt32 = arg.load(0)
        flags = arg.load(4)
        index = arg.load(8)
        start = arg.load(12)
        count = arg.load(16)
        guard argsz >= Self.headerSize, index < indexCount, count < UInt32.max - start,
            flags & ~(Self.dataTypeMask | Self.actionTypeMask) == 0
        else { throw .invalidArgument }
        let max = irqCount(index)
        guard Int(start) < max, Int(start) + Int(count) <= max else { throw .invalidArgument }
        let elementSize: Int
        switch flags & Self.dataTypeMask {
        case UInt32(VFIO_IRQ_SET_DATA_NONE): elementSize = 0
        case UInt32(VFIO_IRQ_SET_DATA_BOOL): elementSize = 1
        case UInt32(VFIO_IRQ_SET_DATA_EVENTFD): elementSize = 4
        default: throw .invalidArgument
        }
        let size = Int(count) * elementSize
        guard Int(argsz) - Self.headerSize >= size else { throw .invalidArgument }
        data = arg.bytes(at: Self.headerSize, count: size)
    }

    var action: UInt32 { flags & Self.actionTypeMask }
    var dataType: UInt32 { flags & Self.dataTypeMask }

    func bool(_ i: Int) -> Bool { data[i] != 0 }

    func fd(_ i: Int) -> Int32 {
        data[4 * i..<4 * i + 4].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
    }
}
