import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// A store's own failure reaches the caller as its own typed value inside ``IMSError/store(_:)``,
/// with the message it always had.
@Suite struct IMSStoreFailureTests {
    @Test func aBARWithoutAnIMSTableIsTheTablesOwnTypedFailure() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary)
        let device = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel)
        defer { device.close() }
        let error = #expect(throws: IMSError.self) { _ = try DSAInterruptTable(bar: try device.bar(0)) }
        guard case let .store(failure)? = error else {
            Issue.record("expected IMSError.store, got \(String(describing: error))")
            return
        }
        #expect(failure as? DSAInterruptTable.Failure == .noTable)
        #expect(error?.description == "the device reports no IMS table (GENCAP.max_ims_mult is 0)")
    }

    @Test func storeFailuresKeepTheirMessages() {
        #expect(IMSError.store(DSAInterruptTable.Failure.pasidTooWide(1 << 20)).description == "PASID 1048576 does not fit 20 bits")
        #expect(
            IMSError.store(EduIMSStore.Failure.notLoaded(slot: 3)).description
                == "slot 3's data is not in edu's buffer: load it first")
        #expect(IMSError.store(IMSQueueError.tooManySlotsToPost(5)).description == "5 slots do not fit the posting register")
    }
}
