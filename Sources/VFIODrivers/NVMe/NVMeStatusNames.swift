/// The NVMe base specification's names for completion status codes (Status Code Type 0
/// generic, 1 command specific, 2 media and data integrity, 3 path related), with the NVM
/// command set's and the Zoned Namespace command set's additions to types 0 and 1.
extension NVMeStatus {
    /// The spec's name for `code` of type `codeType`, or nil for a reserved or vendor code.
    static func specName(codeType: UInt8, code: UInt8) -> String? {
        switch codeType {
        case 0: code < 0x80 ? table(generic, code) : table(genericNVM, code - 0x80)
        case 1:
            code < 0x80
                ? table(commandSpecific, code)
                : code < 0xb8 ? table(commandSpecificNVM, code - 0x80) : table(commandSpecificZoned, code - 0xb8)
        case 2: code >= 0x80 ? table(media, code - 0x80) : nil
        case 3: path[code]
        default: nil
        }
    }

    private static func table(_ names: [String?], _ index: UInt8) -> String? {
        Int(index) < names.count ? names[Int(index)] : nil
    }

    /// SCT 0, SC 00h–24h.
    private static let generic: [String?] = [
        "Successful Completion", "Invalid Command Opcode", "Invalid Field in Command", "Command ID Conflict",
        "Data Transfer Error", "Commands Aborted due to Power Loss Notification", "Internal Error",
        "Command Abort Requested", "Command Aborted due to SQ Deletion", "Command Aborted due to Failed Fused Command",
        "Command Aborted due to Missing Fused Command", "Invalid Namespace or Format", "Command Sequence Error",
        "Invalid SGL Segment Descriptor", "Invalid Number of SGL Descriptors", "Data SGL Length Invalid",
        "Metadata SGL Length Invalid", "SGL Descriptor Type Invalid", "Invalid Use of Controller Memory Buffer",
        "PRP Offset Invalid", "Atomic Write Unit Exceeded", "Operation Denied", "SGL Offset Invalid", nil,
        "Host Identifier Inconsistent Format", "Keep Alive Timer Expired", "Keep Alive Timeout Invalid",
        "Command Aborted due to Preempt and Abort", "Sanitize Failed", "Sanitize In Progress",
        "SGL Data Block Granularity Invalid", "Command Not Supported for Queue in CMB", "Namespace is Write Protected",
        "Command Interrupted", "Transient Transport Error", "Command Prohibited by Command and Feature Lockdown",
        "Admin Command Media Not Ready",
    ]

    /// SCT 0, SC 80h–84h (NVM command set).
    private static let genericNVM: [String?] = [
        "LBA Out of Range", "Capacity Exceeded", "Namespace Not Ready", "Reservation Conflict", "Format In Progress",
    ]

    /// SCT 1, SC 00h–2Dh.
    private static let commandSpecific: [String?] = [
        "Completion Queue Invalid", "Invalid Queue Identifier", "Invalid Queue Size", "Abort Command Limit Exceeded", nil,
        "Asynchronous Event Request Limit Exceeded", "Invalid Firmware Slot", "Invalid Firmware Image",
        "Invalid Interrupt Vector", "Invalid Log Page", "Invalid Format", "Firmware Activation Requires Conventional Reset",
        "Invalid Queue Deletion", "Feature Identifier Not Saveable", "Feature Not Changeable", "Feature Not Namespace Specific",
        "Firmware Activation Requires NVM Subsystem Reset", "Firmware Activation Requires Controller Level Reset",
        "Firmware Activation Requires Maximum Time Violation", "Firmware Activation Prohibited", "Overlapping Range",
        "Namespace Insufficient Capacity", "Namespace Identifier Unavailable", nil, "Namespace Already Attached",
        "Namespace Is Private", "Namespace Not Attached", "Thin Provisioning Not Supported", "Controller List Invalid",
        "Device Self-test In Progress", "Boot Partition Write Prohibited", "Invalid Controller Identifier",
        "Invalid Secondary Controller State", "Invalid Number of Controller Resources", "Invalid Resource Identifier",
        "Sanitize Prohibited While Persistent Memory Region is Enabled", "ANA Group Identifier Invalid", "ANA Attach Failed",
        "Insufficient Capacity", "Namespace Attachment Limit Exceeded", "Prohibition of Command Execution Not Supported",
        "I/O Command Set Not Supported", "I/O Command Set Not Enabled", "I/O Command Set Combination Rejected",
        "Invalid I/O Command Set", "Identifier Unavailable",
    ]

    /// SCT 1, SC 80h–83h (NVM command set).
    private static let commandSpecificNVM: [String?] = [
        "Conflicting Attributes", "Invalid Protection Information", "Attempted Write to Read Only Range",
        "Command Size Limit Exceeded",
    ]

    /// SCT 1, SC B8h–BFh (Zoned Namespace command set).
    private static let commandSpecificZoned: [String?] = [
        "Zoned Boundary Error", "Zone Is Full", "Zone Is Read Only", "Zone Is Offline", "Zone Invalid Write",
        "Too Many Active Zones", "Too Many Open Zones", "Invalid Zone State Transition",
    ]

    /// SCT 2, SC 80h–88h.
    private static let media: [String?] = [
        "Write Fault", "Unrecovered Read Error", "End-to-end Guard Check Error", "End-to-end Application Tag Check Error",
        "End-to-end Reference Tag Check Error", "Compare Failure", "Access Denied", "Deallocated or Unwritten Logical Block",
        "End-to-end Storage Tag Check Error",
    ]

    /// SCT 3.
    private static let path: [UInt8: String] = [
        0x00: "Internal Path Error", 0x01: "Asymmetric Access Persistent Loss", 0x02: "Asymmetric Access Inaccessible",
        0x03: "Asymmetric Access Transition", 0x60: "Controller Pathing Error", 0x70: "Host Pathing Error",
        0x71: "Command Aborted By Host",
    ]
}
