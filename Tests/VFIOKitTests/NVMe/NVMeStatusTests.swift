import Testing
import VFIODrivers

/// Completion status fields decoded: every field, and the spec's names across the sets.
@Suite struct NVMeStatusTests {
    @Test func theStatusFieldDecodesTypeCodeRetryDelayMoreAndDoNotRetry() {
        // DNR (bit 14), M (13), CRD 2 (12:11), SCT 2 (10:8), SC 0x81.
        let status = NVMeStatus(field: 1 << 14 | 1 << 13 | 2 << 11 | 2 << 8 | 0x81)
        #expect(status.codeType == 2)
        #expect(status.code == 0x81)
        #expect(status.retryDelay == 2)
        #expect(status.more)
        #expect(status.doNotRetry)
        #expect(!status.isRetryable)
        #expect(status == .unrecoveredReadError)
        #expect(status.description == "Unrecovered Read Error (SCT 0x2 media and data integrity, SC 0x81) with Do Not Retry set")
        let plain = NVMeStatus(field: 0x82)
        #expect(!plain.doNotRetry && plain.retryDelay == 0 && !plain.more)
        #expect(plain.isRetryable)
        #expect(plain.name == "Namespace Not Ready")
    }

    @Test(arguments: [
        (UInt8(0), UInt8(0x06), "Internal Error"), (0, 0x13, "PRP Offset Invalid"), (0, 0x16, "SGL Offset Invalid"),
        (0, 0x21, "Command Interrupted"), (0, 0x24, "Admin Command Media Not Ready"), (0, 0x83, "Reservation Conflict"),
        (0, 0x84, "Format In Progress"), (1, 0x05, "Asynchronous Event Request Limit Exceeded"), (1, 0x09, "Invalid Log Page"),
        (1, 0x1d, "Device Self-test In Progress"), (1, 0x2d, "Identifier Unavailable"), (1, 0x80, "Conflicting Attributes"),
        (1, 0x82, "Attempted Write to Read Only Range"), (1, 0xb9, "Zone Is Full"), (1, 0xbf, "Invalid Zone State Transition"),
        (2, 0x80, "Write Fault"), (2, 0x82, "End-to-end Guard Check Error"), (2, 0x85, "Compare Failure"),
        (2, 0x87, "Deallocated or Unwritten Logical Block"), (2, 0x88, "End-to-end Storage Tag Check Error"),
        (3, 0x00, "Internal Path Error"), (3, 0x03, "Asymmetric Access Transition"), (3, 0x71, "Command Aborted By Host"),
    ])
    func everySetIsNamed(codeType: UInt8, code: UInt8, name: String) {
        #expect(NVMeStatus(codeType: codeType, code: code).name == name)
    }

    @Test func reservedAndVendorCodesSayWhichTheyAre() {
        #expect(NVMeStatus(codeType: 0, code: 0x17).name == "reserved status")
        #expect(NVMeStatus(codeType: 0, code: 0x25).name == "reserved status")
        #expect(NVMeStatus(codeType: 1, code: 0x04).name == "reserved status")
        #expect(NVMeStatus(codeType: 2, code: 0x10).name == "reserved status")
        #expect(NVMeStatus(codeType: 2, code: 0xc3).name == "vendor specific status")
        #expect(NVMeStatus(codeType: 7, code: 0x01).name == "vendor specific status")
        #expect(NVMeStatus(codeType: 7, code: 0x01).description.contains("SCT 0x7 vendor"))
    }

    @Test func theDriversOwnAbortsAreNotRetried() {
        #expect(!NVMeStatus.abortRequested.isRetryable)
        #expect(!NVMeStatus.abortedBySQDeletion.isRetryable)
        #expect(NVMeStatus.internalError.isRetryable)
        #expect(!NVMeStatus(codeType: 0, code: 0).isRetryable)
    }

    @Test func asyncEventsDecodeTypeInformationAndLogPage() {
        let event = NVMeAsyncEvent(raw: 0x04_00_02)
        #expect(event.kind == .notice)
        #expect(event.information == 0)
        #expect(event.logPage == 4)
        #expect(event.isNamespaceAttributeChanged)
        #expect(event.description == "notice: namespace attribute changed (log page 0x4)")
        let spare = NVMeAsyncEvent(kind: .smartHealth, information: 2, logPage: 2)
        #expect(spare.raw == 0x02_02_01)
        #expect(spare.name == "SMART / health: spare below threshold")
        #expect(NVMeAsyncEvent(raw: 0x05).name == "reserved event type 5")
    }
}
