import VFIOKit

/// An NVMe completion status (NVMe base specification, "Status Field"): status code type
/// (SCT), status code (SC), Command Retry Delay (CRD), More (M) and Do Not Retry (DNR).
public struct NVMeStatus: Sendable, Equatable, CustomStringConvertible {
    public let codeType: UInt8
    public let code: UInt8
    /// Do Not Retry: the same command would fail again.
    public let doNotRetry: Bool
    /// Command Retry Delay: 0, or which of Identify Controller's CRDT1–3 to wait before a retry.
    public let retryDelay: UInt8
    /// More: the Error Information log page has more about this failure.
    public let more: Bool

    /// From the 15-bit status field of a completion entry (DW3 bits 31:17).
    public init(field: UInt16) {
        code = UInt8(field & 0xff)
        codeType = UInt8((field >> 8) & 7)
        retryDelay = UInt8((field >> 11) & 3)
        more = field & (1 << 13) != 0
        doNotRetry = field & (1 << 14) != 0
    }

    public init(codeType: UInt8, code: UInt8, doNotRetry: Bool = false) {
        self.codeType = codeType
        self.code = code
        self.doNotRetry = doNotRetry
        retryDelay = 0
        more = false
    }

    public var isSuccess: Bool { codeType == 0 && code == 0 }

    /// Worth submitting again: DNR clear, and not the driver's own abort or a deleted queue.
    public var isRetryable: Bool { !isSuccess && !doNotRetry && self != .abortRequested && self != .abortedBySQDeletion }

    public static let invalidOpcode = NVMeStatus(codeType: 0, code: 0x01)
    public static let invalidField = NVMeStatus(codeType: 0, code: 0x02)
    public static let dataTransferError = NVMeStatus(codeType: 0, code: 0x04)
    public static let internalError = NVMeStatus(codeType: 0, code: 0x06)
    public static let abortRequested = NVMeStatus(codeType: 0, code: 0x07)
    public static let abortedBySQDeletion = NVMeStatus(codeType: 0, code: 0x08)
    public static let invalidNamespace = NVMeStatus(codeType: 0, code: 0x0b)
    public static let namespaceNotReady = NVMeStatus(codeType: 0, code: 0x82)
    public static let lbaOutOfRange = NVMeStatus(codeType: 0, code: 0x80)
    public static let invalidQueueIdentifier = NVMeStatus(codeType: 1, code: 0x01)
    public static let invalidLogPage = NVMeStatus(codeType: 1, code: 0x09)
    public static let writeFault = NVMeStatus(codeType: 2, code: 0x80)
    public static let unrecoveredReadError = NVMeStatus(codeType: 2, code: 0x81)

    /// Equal when type and code are: DNR, CRD and M qualify a status, they do not name it.
    public static func == (a: NVMeStatus, b: NVMeStatus) -> Bool { a.codeType == b.codeType && a.code == b.code }

    /// The spec's name for the status; reserved codes and vendor specific ones say which they are.
    public var name: String {
        if let name = Self.specName(codeType: codeType, code: code) { return name }
        return codeType == 7 || (codeType < 3 && code >= 0xc0) ? "vendor specific status" : "reserved status"
    }

    private static let typeNames = ["generic", "command specific", "media and data integrity", "path related"]

    public var description: String {
        let type = Int(codeType) < Self.typeNames.count ? Self.typeNames[Int(codeType)] : codeType == 7 ? "vendor" : "reserved"
        return
            "\(name) (SCT 0x\(String(codeType, radix: 16)) \(type), SC 0x\(String(code, radix: 16)))\(doNotRetry ? " with Do Not Retry set" : "")"
    }
}

/// Everything the NVMe driver can fail with. Each message names the command or step, what
/// went wrong and, where there is one, what to do.
public enum NVMeError: Error, Equatable, CustomStringConvertible {
    /// The controller completed `command` with an error status.
    case failed(command: String, status: NVMeStatus)
    /// `command` did not complete in time; `recovery` says what the driver did about it.
    case timeout(command: String, milliseconds: Int, recovery: String)
    /// CSTS.RDY did not reach `ready` within CAP.TO.
    case notReady(expected: Bool, milliseconds: Int)
    /// CSTS.CFS: the controller hit a fatal error.
    case controllerFatal(step: String)
    /// The driver gave the controller up after a reset; bring it up again to continue.
    case controllerFailed(String)
    /// The controller cannot be driven this way (page size, command set, queue counts).
    case unsupported(String)
    /// An argument is out of range for this controller or namespace.
    case invalidArgument(String)
    /// Every command slot of the queue is in use.
    case queueFull(queue: Int)
    /// The framework failed underneath the driver.
    case framework(VFIOError)
    /// `command` was outstanding when the driver reset the controller in place, and repeating
    /// it is not known to be safe, so it was not resubmitted: it may or may not have taken effect.
    case interruptedByReset(command: String)

    public var description: String {
        switch self {
        case let .failed(command, status): "NVMe \(command) failed: \(status)"
        case let .timeout(command, ms, recovery): "NVMe \(command) did not complete within \(ms) ms; \(recovery)"
        case let .notReady(expected, ms):
            "the NVMe controller did not become \(expected ? "ready" : "disabled") (CSTS.RDY=\(expected ? 1 : 0)) within CAP.TO = \(ms) ms"
        case let .controllerFatal(step):
            "the NVMe controller reported a fatal status (CSTS.CFS) during \(step): reset it (bring the driver up again) or power-cycle the device"
        case let .controllerFailed(why): "the NVMe controller was reset and is unusable until brought up again: \(why)"
        case let .unsupported(what): "unsupported NVMe controller: \(what)"
        case let .invalidArgument(what): what
        case let .queueFull(queue): "NVMe I/O queue \(queue) is full: wait for completions before submitting more"
        case let .framework(error): error.description
        case let .interruptedByReset(command):
            "NVMe \(command) was outstanding when the driver reset the controller, and is not safe to repeat blindly: it may or may not have taken effect; check its effect, then submit it again"
        }
    }
}

/// Runs `body`, wrapping a framework error.
@inline(__always)
func framework<T: ~Copyable>(_ body: () throws(VFIOError) -> T) throws(NVMeError) -> T {
    do { return try body() } catch { throw .framework(error) }
}
