import VFIOKit

/// Command Retry Delay: a controller that reports CRDT1–3 in Identify Controller is asked, with
/// Host Behavior Support (Set Features 16h) byte 0 bit 0 (ACRE), to say in each retryable
/// failure's CRD field which of them to wait before the retry. The owners then park the retry
/// for that long instead of the back-off (``NVMeMailbox/retryLater(_:_:)``), on their tick.
extension NVMeDriver {
    static let hostBehaviorFeature: UInt32 = 0x16

    /// CRDT1–3 in nanoseconds when Advanced Command Retry is on; all zero otherwise.
    var retryDelays: (UInt64, UInt64, UInt64) { supervision.retryDelays.withLock { $0 } }

    /// Enables Advanced Command Retry where the controller reports any CRDT, running Set
    /// Features with `run` (the admin path of the caller: bring-up's or a reset's). A controller
    /// that refuses the feature keeps CRD clear: the owners use the back-off.
    func enableRetryDelays(_ run: (NVMeCommand, NVMeDataRange) throws(NVMeError) -> UInt32) throws(NVMeError) {
        let times = controller?.commandRetryDelayTimes ?? []
        var delays: (UInt64, UInt64, UInt64) = (0, 0, 0)
        defer { supervision.retryDelays.withLock { $0 = delays } }
        guard times.contains(where: { $0 != 0 }) else { return }
        let page = try framework { () throws(VFIOError) in try device.dma.allocate(NVMeQueuePair.pageSize) }
        page.bytes[0] = 1
        var command = NVMeCommand(opcode: NVMeCommand.AdminOpcode.setFeatures)
        command.cdw10 = Self.hostBehaviorFeature
        guard let data = NVMeDataRange(page, offset: 0, count: 512) else { return }
        do {
            _ = try run(command, data)
        } catch {
            if case .failed = error { return }
            throw error
        }
        let ns = (0..<3).map { UInt64($0 < times.count ? times[$0] : 0) * 100_000_000 }
        delays = (ns[0], ns[1], ns[2])
    }
}
