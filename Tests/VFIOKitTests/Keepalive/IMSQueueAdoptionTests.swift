import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// The IMS queue driver handed over with work in flight and adopted by a new instance in this
/// process: no reset, the queue memory at the same IOVA, the work submitted before the
/// hand-over completed by the successor, and interrupts delivered to it.
@Suite struct IMSQueueAdoptionTests {
    let address = MockMachine.primary

    /// The simulated device open on the legacy backend with a started loop, and a driver of
    /// four queues started through ``PCIDriver/adoptOrStart(device:loop:from:configure:)``.
    struct Rig {
        let machine = MockMachine(for: .legacy)
        let simulated = IMSQueueDevice(options: .init())
        let device: PCIDevice
        let loop: EventLoop

        init() throws {
            device = try machine.open(simulated, on: .legacy)
            loop = try machine.startedLoop()
        }

        func start(_ store: IMSQueueDriver.StoreKind, from handOver: DeviceHandOver?) throws -> (IMSQueueDriver, AdoptionOutcome) {
            try IMSQueueDriver.adoptOrStart(device: device, loop: loop, from: handOver) {
                $0.configuration.queues = 4
                $0.configuration.store = store
            }
        }

        func close() {
            loop.stop()
            device.close()
        }
    }

    /// Submits one descriptor to each of the four queues, then waits until `driver` has
    /// counted `total` completions.
    func submitToEveryQueue(_ driver: IMSQueueDriver, thenWaitFor total: UInt64) throws {
        for q in 0..<4 { try driver.submit(queue: q) }
        try waitUntil(driver, hasCompleted: total)
    }

    @Test(arguments: IMSQueueDriver.StoreKind.allCases)
    func anAdoptedDriverCompletesWorkSubmittedBeforeTheHandOver(_ store: IMSQueueDriver.StoreKind) throws {
        let rig = try Rig()
        defer { rig.close() }
        let kernel = rig.machine.kernel
        let (first, started) = try rig.start(store, from: nil)
        #expect(started == .reset(because: "no driver state record was handed over"))
        for q in 0..<4 { try first.submit(queue: q, count: 2) }
        try waitUntil(first, hasCompleted: 8)
        let resets = kernel.deviceResets(of: address)
        // Four more descriptors, completed only after the hand-over.
        rig.simulated.setCompletionDelay(.milliseconds(100))
        for q in 0..<4 { try first.submit(queue: q) }
        var handOver = DeviceHandOver(address: address)
        try first.handOver(into: &handOver)
        first.stop()
        let piece = try #require(handOver.pieces.first)
        #expect(handOver.pieces.count == 1)
        #expect(kernel.interruptState(of: address)?.kind == .msix && kernel.isDeviceOpen(address))

        let (second, outcome) = try rig.start(store, from: handOver)
        defer { second.stop() }
        #expect(outcome == .adopted)
        #expect(second.configuration.queues == 4 && second.configuration.store == store)
        #expect(second.queueActivity.map(\.submitted) == [3, 3, 3, 3])
        try waitUntil(second, hasCompleted: 12)
        // New work interrupts the new instance on every queue.
        rig.simulated.setCompletionDelay(.zero)
        try submitToEveryQueue(second, thenWaitFor: 16)
        #expect(second.completionCounts() == [4, 4, 4, 4])
        for q in 0..<4 { #expect(second.deliveries(queue: q) >= 1, "queue \(q)") }
        #expect(kernel.deviceResets(of: address) == resets)
        #expect(kernel.dmaMappings(of: address).contains { $0.iova == piece.deviceAddress && $0.size == UInt64(piece.length) })
        #expect(kernel.dmaFaults.isEmpty)
    }

    /// Work that completes while no driver listens is counted by the adoption itself: here the
    /// loop is stopped, so no handler could count it.
    @Test func completionsThatLandedUnheardAreCountedOnAdoption() throws {
        let rig = try Rig()
        defer { rig.close() }
        let (first, _) = try rig.start(.queueContext, from: nil)
        try submitToEveryQueue(first, thenWaitFor: 4)
        rig.loop.stop()
        for q in 0..<4 { try first.submit(queue: q, count: 2) }
        var handOver = DeviceHandOver(address: address)
        try first.handOver(into: &handOver)
        let (second, outcome) = try rig.start(.queueContext, from: handOver)
        defer { second.stop() }
        #expect(outcome == .adopted)
        #expect(second.completionCounts() == [3, 3, 3, 3])
        #expect((0..<4).map { second.deliveries(queue: $0) } == [0, 0, 0, 0])
        try rig.loop.start()
        try submitToEveryQueue(second, thenWaitFor: 16)
    }

    @Test func aDamagedRecordEndsInAResetAndWorkingQueues() throws {
        let rig = try Rig()
        defer { rig.close() }
        let (first, _) = try rig.start(.queueContext, from: nil)
        try submitToEveryQueue(first, thenWaitFor: 4)
        var handOver = DeviceHandOver(address: address)
        try first.handOver(into: &handOver)
        let resets = rig.machine.kernel.deviceResets(of: address)
        handOver.record![9] ^= 0x01
        let (second, outcome) = try rig.start(.queueContext, from: handOver)
        defer { second.stop() }
        guard case .reset(let reason) = outcome else {
            Issue.record("adopted from a damaged record")
            return
        }
        #expect(reason.contains("it was damaged"))
        #expect(rig.machine.kernel.deviceResets(of: address) == resets + 1)
        #expect(second.totalCompletions == 0)
        try submitToEveryQueue(second, thenWaitFor: 4)
    }

    @Test func aDeviceResetSinceTheHandOverIsNotAdopted() throws {
        let rig = try Rig()
        defer { rig.close() }
        let (first, _) = try rig.start(.deviceTable, from: nil)
        var handOver = DeviceHandOver(address: address)
        try first.handOver(into: &handOver)
        try rig.device.reset()
        let (second, outcome) = try rig.start(.deviceTable, from: handOver)
        defer { second.stop() }
        #expect(outcome == .reset(because: "the ims-queue record does not match the device: the device's queues are disabled"))
        try submitToEveryQueue(second, thenWaitFor: 4)
    }
}
