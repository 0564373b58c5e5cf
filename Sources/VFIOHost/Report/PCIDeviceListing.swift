import FoundationEssentials

/// One line of `vfiokit list`: a device's IDs and class exactly as sysfs prints them
/// (`0x8086`, `0x010802`), with the names lspci would show.
public struct PCIDeviceListing: Encodable, Equatable, Sendable {
    public let address: String
    public let `class`: String
    public let className: String
    public let vendor: String
    public let vendorName: String
    public let device: String
    public let deviceName: String
    @NullWhenAbsent public internal(set) var driver: String?
    @NullWhenAbsent public internal(set) var iommuGroup: Int?
    @NullWhenAbsent public internal(set) var numaNode: Int?

    public init(_ device: HostPCIDevice, names: PCINameDatabase) {
        address = device.address.description
        self.class = sysfsHex(device.classCode, digits: 6)
        className = names.className(device.classID)
        vendor = sysfsHex(device.vendorID, digits: 4)
        vendorName = names.vendorName(device.vendorID)
        self.device = sysfsHex(device.deviceID, digits: 4)
        deviceName = names.deviceName(vendor: device.vendorID, device: device.deviceID)
        driver = device.driver?.rawValue
        iommuGroup = device.iommuGroup
        numaNode = device.numaNode
    }

    /// Every device on the host, in address order.
    public static func all(_ discovery: PCIDiscovery, names: PCINameDatabase) throws(HostAccessError) -> [PCIDeviceListing] {
        try discovery.devices().map { PCIDeviceListing($0, names: names) }
    }
}

/// `0x` and lower-case hex zero-padded to `digits`, as the kernel's `0x%04x` attributes read.
func sysfsHex<T: BinaryInteger>(_ value: T, digits: Int) -> String {
    let text = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
}

/// The JSON the CLI prints for `--json`: pretty, keys sorted, one trailing newline omitted.
public func jsonText<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    // Encoding these plain value types cannot fail.
    guard let data = try? encoder.encode(value) else { return "null" }
    return String(decoding: data, as: UTF8.self)
}
