import VFIOKit

/// An NVMe completion status: status code type (SCT) and status code (SC).
public struct NVMeStatus: Sendable, Equatable, CustomStringConvertible {
    public let codeType: UInt8
    public let code: UInt8
    /// Do Not Retry: the same command would fail again.
    public let doNotRetry: Bool

    /// From the 15-bit status field of a completion entry (DW3 bits 31:17).
    public init(field: UInt16) {
        code = UInt8(field & 0xff)
        codeType = UInt8((field >> 8) & 7)
        doNotRetry = field & (1 << 14) != 0
    }

    public init(codeType: UInt8, code: UInt8) {
        self.codeType = codeType
        self.code = code
        doNotRetry = false
    }

    public var isSuccess: Bool { codeType == 0 && code == 0 }

    public static let invalidOpcode = NVMeStatus(codeType: 0, code: 0x01)
    public static let invalidField = NVMeStatus(codeType: 0, code: 0x02)
    public static let dataTransferError = NVMeStatus(codeType: 0, code: 0x04)
    public static let abortRequested = NVMeStatus(codeType: 0, code: 0x07)
    public static let invalidNamespace = NVMeStatus(codeType: 0, code: 0x0b)
    public static let lbaOutOfRange = NVMeStatus(codeType: 0, code: 0x80)
    public static let invalidQueueIdentifier = NVMeStatus(codeType: 1, code: 0x01)

    public static func == (a: NVMeStatus, b: NVMeStatus) -> Bool { a.codeType == b.codeType && a.code == b.code }

    /// The spec's name for the status, when it is one the driver knows.
    public var name: String {
        switch (codeType, code) {
        case (0, 0x00): "Successful Completion"
        case (0, 0x01): "Invalid Command Opcode"
        case (0, 0x02): "Invalid Field in Command"
        case (0, 0x03): "Command ID Conflict"
        case (0, 0x04): "Data Transfer Error"
        case (0, 0x05): "Commands Aborted due to Power Loss Notification"
        case (0, 0x06): "Internal Error"
        case (0, 0x07): "Command Abort Requested"
        case (0, 0x08): "Command Aborted due to SQ Deletion"
        case (0, 0x0b): "Invalid Namespace or Format"
        case (0, 0x0c): "Command Sequence Error"
        case (0, 0x13): "PRP Offset Invalid"
        case (0, 0x80): "LBA Out of Range"
        case (0, 0x81): "Capacity Exceeded"
        case (0, 0x82): "Namespace Not Ready"
        case (1, 0x00): "Completion Queue Invalid"
        case (1, 0x01): "Invalid Queue Identifier"
        case (1, 0x02): "Invalid Queue Size"
        case (1, 0x03): "Abort Command Limit Exceeded"
        case (1, 0x08): "Invalid Interrupt Vector"
        case (1, 0x0c): "Invalid Queue Deletion"
        case (2, 0x80): "Write Fault"
        case (2, 0x81): "Unrecovered Read Error"
        default: "unknown status"
        }
    }

    private static let typeNames = ["generic", "command specific", "media and data integrity", "path related"]

    public var description: String {
        let type = Int(codeType) < Self.typeNames.count ? Self.typeNames[Int(codeType)] : "vendor"
        return "\(name) (SCT 0x\(String(codeType, radix: 16)) \(type), SC 0x\(String(code, radix: 16)))"
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
        }
    }
}

/// Runs `body`, wrapping a framework error.
@inline(__always)
func framework<T: ~Copyable>(_ body: () throws(VFIOError) -> T) throws(NVMeError) -> T {
    do { return try body() } catch { throw .framework(error) }
}
