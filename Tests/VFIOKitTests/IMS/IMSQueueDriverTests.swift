import Dispatch
import Glibc
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// The IMS queue sample driver on the simulated IMS device, with each store kind.
@Suite struct IMSQueueDriverTests {
    static let stores = IMSQueueDriver.StoreKind.allCases

    /// With each store kind; the registers and doorbells are reached through the BARs'
    /// mappings, as on vfio-pci, not pread/pwrite.
    @Test(arguments: stores)
    func everyQueueCountsItsOwnCompletions(_ store: IMSQueueDriver.StoreKind) throws {
        let rig = try IMSRig(store: store, queues: 8)
        defer { rig.close() }
        let configured = rig.machine.kernel.registerAccessesThroughMappings
        #expect(configured > 0)
        for q in 0..<8 { try rig.driver.submit(queue: q, count: q + 1) }
        try rig.waitForCompletions(36)
        // The doorbells rung went through BAR2's mapping.
        #expect(rig.machine.kernel.registerAccessesThroughMappings >= configured + 8)
        #expect(rig.driver.completionCounts() == (0..<8).map { UInt64($0 + 1) })
        #expect(rig.driver.completionCounts(groupSize: 4) == [10, 26])
        for q in 0..<8 { #expect(rig.driver.deliveries(queue: q) == 1, "queue \(q)") }
    }

    /// More queues than the device rereads in one go (4096 contexts): a reload of all of them
    /// reaches the last, whose message and summaries then arrive.
    @Test func contextsPastOneReloadChunkAreProgrammed() throws {
        let rig = try IMSRig(store: .queueContext, queues: 5000)
        defer { rig.close() }
        for q in [0, 4095, 4096, 4999] { try rig.driver.submit(queue: q) }
        try rig.waitForCompletions(4)
        for q in [0, 4095, 4096, 4999] { #expect(rig.driver.deliveries(queue: q) == 1, "queue \(q)") }
    }

    /// Submissions, completions and timeouts are counted where they happen: a stalled queue's
    /// work stays in flight and its wait is counted as a timeout; a lost completion stays in flight.
    @Test func queueActivityCountsSubmissionsCompletionsAndTimeouts() throws {
        let rig = try IMSRig(store: .queueContext, queues: 3)
        defer { rig.close() }
        try rig.driver.exercise()
        rig.simulated.stall(queue: 1)
        rig.simulated.dropNextCompletion(queue: 2)
        #expect(throws: IMSQueueError.self) { try rig.driver.exercise() }
        let queues = rig.driver.activity.queues ?? []
        #expect(queues.map(\.submitted) == [2, 2, 2])
        #expect(queues.map(\.completed) == [2, 1, 1])
        #expect(queues.map(\.inFlight) == [0, 1, 1])
        #expect(queues.map(\.timeouts) == [0, 1, 1])
        #expect(rig.driver.activity.operations == 4)
    }

    @Test func probeRefusesAnotherDevice() throws {
        let machine = MockMachine(for: .legacy)
        let device = try machine.open(Devices.edu(), on: .legacy)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        #expect(throws: IMSQueueError.self) { try IMSQueueDriver(device: device, loop: loop) }
    }

    @Test func theDeviceDeclaresIMSAndTheTableComesFromItsRegisters() throws {
        let rig = try IMSRig(store: .deviceTable, queues: 4)
        defer { rig.close() }
        let table = try #require(rig.driver.domain?.store as? DSAInterruptTable)
        #expect(table.capacity == 8 * 256)
        #expect(table.tableOffset == 0x1000)
        // Slot 2 carries the domain's message: an address in the status area and its tag.
        let slot = rig.driver.slots[2]
        let entry = table.entry(2)
        #expect(entry.data == slot.tag)
        #expect(entry.control & 1 == 0)
        #expect(UInt64(entry.addressHigh) << 32 | UInt64(entry.addressLow) != 0)
    }
}

/// The simulated IMS device, opened on the mock and driven by the sample driver.
struct IMSRig {
    let machine: MockMachine
    let simulated: IMSQueueDevice
    let device: PCIDevice
    let loop: EventLoop
    let driver: IMSQueueDriver

    init(
        store: IMSQueueDriver.StoreKind, queues: Int, backend: Backend = .legacy, commitTimeout: Duration = .seconds(1),
        options: IMSQueueDevice.Options = .init()
    ) throws {
        machine = MockMachine(for: backend)
        simulated = IMSQueueDevice(options: options)
        device = try machine.open(simulated, on: backend)
        loop = try machine.startedLoop()
        driver = try IMSQueueDriver(device: device, loop: loop)
        driver.configuration.queues = queues
        driver.configuration.store = store
        driver.configuration.commitTimeout = commitTimeout
        try driver.start()
    }

    /// Waits, boundedly, until the driver has consumed `total` completions.
    func waitForCompletions(_ total: UInt64, seconds: Double = 10) throws {
        try waitUntil(driver, hasCompleted: total, seconds: seconds)
    }

    func close() {
        driver.stop()
        loop.stop()
        device.close()
    }
}

/// Waits, at most `seconds`, until `driver` has consumed `total` completions.
func waitUntil(_ driver: IMSQueueDriver, hasCompleted total: UInt64, seconds: Double = 10) throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while driver.totalCompletions < total {
        guard ContinuousClock.now < deadline else {
            throw VFIOError.timeout(what: "\(total) completions (have \(driver.totalCompletions))", milliseconds: Int(seconds * 1000))
        }
        usleep(200)
    }
}
