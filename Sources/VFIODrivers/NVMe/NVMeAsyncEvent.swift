/// An asynchronous event, decoded from the Asynchronous Event Request completion's DW0
/// (NVMe base specification, "Asynchronous Event Request"): type in bits 2:0, information in
/// 15:8 and the log page to read (which clears the event) in 23:16.
public struct NVMeAsyncEvent: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable {
        case error = 0, smartHealth = 1, notice = 2, immediate = 3, oneShot = 4, ioCommandSet = 6, vendor = 7
    }

    /// DW0 as completed.
    public let raw: UInt32
    public var typeCode: UInt8 { UInt8(raw & 7) }
    public var kind: Kind? { Kind(rawValue: typeCode) }
    public var information: UInt8 { UInt8((raw >> 8) & 0xff) }
    public var logPage: UInt8 { UInt8((raw >> 16) & 0xff) }

    public init(raw: UInt32) { self.raw = raw }

    public init(kind: Kind, information: UInt8, logPage: UInt8) {
        raw = UInt32(kind.rawValue) | UInt32(information) << 8 | UInt32(logPage) << 16
    }

    /// A Notice of type Namespace Attribute Changed: read the Changed Namespace List.
    public var isNamespaceAttributeChanged: Bool { kind == .notice && information == 0 }

    /// The spec's description of the event.
    public var name: String {
        let info = Int(information)
        switch kind {
        case .error?:
            let names = [
                "write to an invalid doorbell register", "invalid doorbell write value", "diagnostic failure",
                "persistent internal error", "transient internal error", "firmware image load error",
            ]
            return "error: " + (info < names.count ? names[info] : "information 0x\(String(info, radix: 16))")
        case .smartHealth?:
            let names = ["NVM subsystem reliability", "temperature threshold", "spare below threshold"]
            return "SMART / health: " + (info < names.count ? names[info] : "information 0x\(String(info, radix: 16))")
        case .notice?:
            let names = [
                "namespace attribute changed", "firmware activation starting", "telemetry log changed",
                "asymmetric namespace access change", "predictable latency event aggregate log change",
                "LBA status information alert", "endurance group event aggregate log page change",
            ]
            return "notice: " + (info < names.count ? names[info] : "information 0x\(String(info, radix: 16))")
        case .immediate?: return "immediate: information 0x\(String(info, radix: 16))"
        case .oneShot?: return "one-shot: information 0x\(String(info, radix: 16))"
        case .ioCommandSet?:
            return info == 0
                ? "I/O command set: reservation log page available" : "I/O command set: information 0x\(String(info, radix: 16))"
        case .vendor?: return "vendor specific: information 0x\(String(info, radix: 16))"
        case nil: return "reserved event type \(typeCode)"
        }
    }

    public var description: String { "\(name) (log page 0x\(String(logPage, radix: 16)))" }
}

/// An asynchronous event and what the driver read to clear it.
public struct NVMeHealthEvent: Sendable, Equatable {
    public enum Detail: Sendable, Equatable {
        case smart(NVMeSMARTLog)
        case errors([NVMeErrorLogEntry])
        case changedNamespaces(NVMeChangedNamespaceList)
        /// The event's log page is one the driver does not parse; it was read to clear the event.
        case unparsed
        /// Reading the log page failed, with this message.
        case unreadable(String)
    }

    public let event: NVMeAsyncEvent
    public let detail: Detail
}
