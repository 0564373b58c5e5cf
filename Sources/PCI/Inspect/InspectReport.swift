import Foundation

/// The report `vfiokit inspect --dump FILE` prints: every device of a dump, in file order.
public struct InspectReport: Hashable, Sendable, Encodable {
    /// The dump's name, as given.
    public let file: String
    public let devices: [ConfigSpaceReport]

    public init(dump: PCIDump) {
        file = dump.name
        devices = dump.devices.map { ConfigSpaceReport(address: $0.address, title: $0.title, config: $0.config) }
    }

    /// The report as JSON: keys sorted, so equal reports always give identical text.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The report as text for people: one block per device.
    public func text() -> String {
        let count = devices.count == 1 ? "1 device" : "\(devices.count) devices"
        return ([file + ": " + count] + devices.map(\.text)).joined(separator: "\n\n") + "\n"
    }
}
