/// The 24-bit class code at config offset 0x09: base class, subclass and programming interface.
public struct ClassCode: Hashable, Sendable, Encodable, CustomStringConvertible {
    public let baseClass: UInt8
    public let subclass: UInt8
    public let programmingInterface: UInt8

    public init(baseClass: UInt8, subclass: UInt8, programmingInterface: UInt8) {
        self.baseClass = baseClass
        self.subclass = subclass
        self.programmingInterface = programmingInterface
    }

    /// Base class and subclass as one 16-bit value, as lspci prints it (`0200` for Ethernet).
    public var classID: UInt16 { UInt16(baseClass) << 8 | UInt16(subclass) }

    /// The base class's name from the PCI Code and ID Assignment specification, or `nil` for a
    /// value it does not assign.
    public var baseClassName: String? {
        switch baseClass {
        case 0x00: "Unclassified device"
        case 0x01: "Mass storage controller"
        case 0x02: "Network controller"
        case 0x03: "Display controller"
        case 0x04: "Multimedia controller"
        case 0x05: "Memory controller"
        case 0x06: "Bridge"
        case 0x07: "Communication controller"
        case 0x08: "Generic system peripheral"
        case 0x09: "Input device controller"
        case 0x0a: "Docking station"
        case 0x0b: "Processor"
        case 0x0c: "Serial bus controller"
        case 0x0d: "Wireless controller"
        case 0x0e: "Intelligent controller"
        case 0x0f: "Satellite communications controller"
        case 0x10: "Encryption controller"
        case 0x11: "Signal processing controller"
        case 0x12: "Processing accelerators"
        case 0x13: "Non-Essential Instrumentation"
        case 0x40: "Coprocessor"
        case 0xff: "Unassigned class"
        default: nil
        }
    }

    /// `cccc` with the programming interface appended as `.pp`, e.g. `0106.01`.
    public var description: String {
        hexString(classID, width: 4) + "." + hexString(programmingInterface, width: 2)
    }
}
