import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Faults injected into the simulated IMS device, and what the framework makes of them.
@Suite struct IMSDeviceFaultTests {
    /// The device stops acknowledging context reloads: the commit times out with an error that
    /// says so, and the slot stays masked until a later unmask succeeds.
    @Test func anAcknowledgementThatNeverComesTimesOutAndLeavesTheSlotMasked() throws {
        let rig = try IMSRig(store: .queueContext, queues: 4, commitTimeout: .milliseconds(100))
        defer { rig.close() }
        let domain = try #require(rig.driver.domain)
        let slot = rig.driver.slots[0]
        try domain.mask(slot)
        rig.simulated.setAcknowledgesReloads(false)
        #expect {
            try domain.unmask(slot)
        } throws: { error in
            guard case IMSError.commitTimeout(_, 100) = error else { return false }
            let text = "\(error)"
            return text.contains("did not acknowledge") && text.contains("left masked")
        }
        try rig.driver.submit(queue: 0)
        try rig.driver.submit(queue: 1)
        try rig.waitForCompletions(1)
        usleep(20_000)
        #expect(rig.driver.deliveries(queue: 0) == 0, "the slot stayed masked")
        rig.simulated.setAcknowledgesReloads(true)
        try domain.unmask(slot)
        try rig.waitForCompletions(2)
        #expect(rig.driver.completions(queue: 0) == 1)
    }

    /// Completions that come late are still counted on their queues.
    @Test(arguments: IMSQueueDriver.StoreKind.allCases)
    func delayedCompletionsArriveOnTheirQueues(_ store: IMSQueueDriver.StoreKind) throws {
        let rig = try IMSRig(store: store, queues: 4)
        defer { rig.close() }
        rig.simulated.setCompletionDelay(.milliseconds(50))
        for q in 0..<4 { try rig.driver.submit(queue: q, count: 2) }
        #expect(rig.driver.totalCompletions == 0)
        try rig.waitForCompletions(8)
        #expect(rig.driver.completionCounts() == [2, 2, 2, 2])
    }

    /// A message aimed at an unmapped IOVA is an IOMMU fault, not a delivery, and the device
    /// keeps working.
    @Test(arguments: [Backend.legacy, .iommufd])
    func aMessageToAnUnmappedIOVAIsAnIOMMUFault(_ backend: Backend) throws {
        let rig = try IMSRig(store: .deviceTable, queues: 4, backend: backend)
        defer { rig.close() }
        let domain = try #require(rig.driver.domain)
        let slot = rig.driver.slots[2]
        let unmapped: UInt64 = 0x3f00_0000
        #expect(!rig.machine.kernel.dmaMappings(of: MockMachine.primary).contains { $0.iova <= unmapped && unmapped - $0.iova < $0.size })
        try domain.program(slot, message: InterruptMessage(address: unmapped, data: slot.tag))
        try domain.unmask(slot)
        rig.machine.kernel.clearDMAFaults()
        try rig.driver.submit(queue: 2)
        try rig.driver.submit(queue: 1)
        try rig.waitForCompletions(1)
        let faults = rig.machine.kernel.dmaFaults
        #expect(faults.contains { $0.iova == unmapped && $0.isWrite && $0.reason == .unmapped })
        #expect(rig.driver.deliveries(queue: 2) == 0)
        #expect(rig.driver.completions(queue: 1) == 1, "the device is still serviceable")
    }

    /// A slot storming its interrupt: the device stays serviceable, and once mask() returns
    /// the storm delivers nothing more.
    @Test(arguments: IMSQueueDriver.StoreKind.allCases)
    func aStormingSlotCanBeMaskedAndTheDeviceStaysServiceable(_ store: IMSQueueDriver.StoreKind) throws {
        let rig = try IMSRig(store: store, queues: 4)
        defer { rig.close() }
        let domain = try #require(rig.driver.domain)
        let slot = rig.driver.slots[3]
        // A thread of its own: Dispatch's global pool is as wide as the CPUs, and parallel
        // tests can hold all of it.
        let storming = DispatchGroup()
        storming.enter()
        Thread {
            rig.simulated.storm(queue: 3, count: 20_000); storming.leave()
        }.start()
        let deadline = ContinuousClock.now + .seconds(30)
        while rig.driver.deliveries(queue: 3) < 10, ContinuousClock.now < deadline { usleep(100) }
        try domain.mask(slot)
        let afterMask = rig.driver.deliveries(queue: 3)
        #expect(afterMask >= 10)
        storming.wait()
        try rig.driver.submit(queue: 0)
        try rig.waitForCompletions(1)
        usleep(20_000)
        #expect(rig.driver.deliveries(queue: 3) == afterMask, "nothing after mask() returned")
        #expect(rig.driver.completions(queue: 0) == 1)
    }
}
