#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VFIOKit

/// IMS through a real IOMMU, on QEMU's edu device (`vfiokit selftest --driver edu-ims`): a domain
/// of thousands of slots over an ``EduIMSStore``, whose message writes are edu DMAs into the
/// domain's status area and whose doorbell is edu's MSI. The same code runs on the mock.
public enum EduIMSSelfTest {
    public static let name = "edu-ims"
    /// Slots in the domain, and how many of them fire.
    public static let domainSize = 4096
    public static let fired = 64
    static let masked = 4

    public static func run(on device: PCIDevice, loop: EventLoop, report: @escaping (SelfTestStep) -> Void) -> [SelfTestStep] {
        let recorder = SelfTestRecorder(report: report)
        let rig: Rig
        do {
            guard try EduDriver.supports(device) else {
                recorder.record("probe", false, "\(device.address) is not an edu device (1234:11e8)")
                return recorder.steps
            }
            guard try device.interrupts.info(.msi).count > 0 else {
                recorder.record("probe", nil, "the \(device.backend) backend offers no MSI for the IMS doorbell")
                return recorder.steps
            }
            recorder.record("probe", true, "\(device.address) on the \(device.backend) backend")
            rig = try Rig(device: device, loop: loop)
        } catch {
            recorder.record("domain", false, "\(error)")
            return recorder.steps
        }
        defer { rig.close() }
        recorder.record(
            "domain", true,
            "\(domainSize) slots, status area at IOVA 0x\(String(rig.statusAddress, radix: 16)), each message write posting its summaries, edu's MSI as the one doorbell"
        )
        let chosen = Array((0..<domainSize).shuffled().prefix(fired + masked + 1))
        let firing = Array(chosen.prefix(fired))
        let held = Array(chosen[fired..<fired + masked])
        recorder.check("load") { () throws(IMSError) in
            try rig.store.load(chosen)
            try rig.domain.batch { (b) throws(IMSError) in for i in firing { try b.unmask(rig.slots[i]) } }
            return (true, "the data of \(chosen.count) slots in edu's buffer in one DMA")
        }
        recorder.check("random slots") { () throws(IMSError) in
            for i in firing { try rig.store.fire(i) }
            let arrived = rig.wait(for: firing)
            let wrong = rig.tally.deliveries.withLock { d in d.indices.filter { d[$0] != (firing.contains($0) ? 1 : 0) } }
            return (
                arrived && wrong.isEmpty && rig.tally.misrouted.load(ordering: .relaxed) == 0,
                "\(fired) of \(domainSize) slots fired in random order, each delivered once to its own handler"
                    + (wrong.isEmpty ? "" : "; wrong counts on slots \(wrong.prefix(8))")
            )
        }
        recorder.check("masked slots") { () throws(IMSError) in
            for i in held { try rig.store.fire(i) }
            usleep(400_000)
            let early = held.map { rig.count($0) }
            for i in held { try rig.domain.unmask(rig.slots[i]) }
            let arrived = rig.wait(for: held)
            usleep(200_000)
            let late = held.map { rig.count($0) }
            return (
                early.allSatisfy { $0 == 0 } && arrived && late.allSatisfy { $0 == 1 },
                "\(masked) masked slots delivered \(early) while masked, \(late) after unmask"
            )
        }
        recorder.check("msi window refused") { () throws(IMSError) in
            let slot = rig.slots[held[0]]
            do throws(IMSError) {
                try rig.domain.program(slot, message: InterruptMessage(address: 0xfee0_0000, data: slot.tag))
                return (false, "a message for 0xfee00000 was accepted")
            } catch .addressInMSIWindow {
                return (true, "a message for 0xfee00000 was refused before anything was programmed")
            }
        }
        unmappedIOVA(rig, spare: chosen[fired + masked], recorder)
        return recorder.steps
    }

    /// A message aimed at an unmapped IOVA: the IOMMU reports a DMAR fault, nothing is
    /// delivered, and the domain goes on delivering.
    private static func unmappedIOVA(_ rig: Rig, spare: Int, _ recorder: SelfTestRecorder) {
        guard rig.device.dma.translates else {
            recorder.record("unmapped iova", nil, "the \(rig.device.backend) backend has no IOMMU to catch a stray message")
            return
        }
        recorder.check("unmapped iova") { () throws(IMSError) in
            let log: IOMMUFaultLog
            let unmapped: UInt64
            do throws(VFIOError) {
                log = try rig.device.openFaultLog()
                let stray = try rig.device.dma.allocate(4096, below: EduRegisters.dmaLimit)
                unmapped = stray.deviceAddress
                try stray.free()
            } catch { throw .framework(error) }
            let slot = rig.slots[spare]
            try rig.domain.program(slot, message: InterruptMessage(address: unmapped, data: slot.tag))
            try rig.domain.unmask(slot)
            try rig.store.fire(spare)
            try rig.store.commit(timeout: .seconds(2))
            var faults: [IOMMUFault] = []
            for _ in 0..<50 where faults.isEmpty {
                faults = log.newFaults().filter { $0.address == unmapped }
                if faults.isEmpty { usleep(20_000) }
            }
            let firstFired = rig.slots.indices.first { rig.count($0) == 1 }!
            try rig.store.fire(firstFired)
            let served = rig.wait(for: [firstFired], times: 2)
            guard let fault = faults.first else {
                return (false, "the message write to unmapped IOVA 0x\(String(unmapped, radix: 16)) raised no IOMMU fault")
            }
            return (rig.count(spare) == 0 && served, "\(fault) caught, nothing delivered, and the next slot still fired")
        }
    }

    /// What the slots' handlers saw.
    final class Tally: Sendable {
        let deliveries = Mutex<[UInt16]>(Array(repeating: 0, count: EduIMSSelfTest.domainSize))
        /// Handlers called with a slot that is not theirs.
        let misrouted = Atomic<Int>(0)

        func record(slot: Int, handler: Int) {
            if slot != handler { misrouted.add(1, ordering: .relaxed) }
            deliveries.withLock { $0[handler] &+= 1 }
        }
    }

    /// The domain over edu, its slots, and what their handlers saw.
    final class Rig: @unchecked Sendable {
        let device: PCIDevice
        let store: EduIMSStore
        let domain: IMSDomain
        let slots: [IMSSlot]
        let tally = Tally()
        var statusAddress: UInt64 { store.capacity > 0 ? domainStatusAddress : 0 }
        private let domainStatusAddress: UInt64

        init(device: PCIDevice, loop: EventLoop) throws {
            self.device = device
            let registers = try device.bar(0).mmio(EduRegisters.self)
            guard let doorbell = try device.interrupts.enable(.msi, vectors: 1).first else {
                throw VFIOError.interruptUnavailable(device.address, .msi, requested: 1, available: 0)
            }
            try device.setBusMaster(true)
            let staging = try device.dma.allocate(EduRegisters.bufferSize, below: EduRegisters.dmaLimit)
            store = EduIMSStore(registers: registers, staging: staging, capacity: EduIMSSelfTest.domainSize)
            domain = try IMSDomain(
                store: store, device: device, delivery: .doorbell(doorbell, loop), posting: store.summaryPosting,
                below: EduRegisters.dmaLimit)
            var slots: [IMSSlot] = []
            let tally = self.tally
            for i in 0..<EduIMSSelfTest.domainSize {
                slots.append(try domain.allocate { slot in tally.record(slot: slot.index, handler: i) })
            }
            self.slots = slots
            domainStatusAddress = store.message(slots[0].index).address
        }

        func count(_ index: Int) -> Int { Int(tally.deliveries.withLock { $0[index] }) }

        /// Waits, boundedly, until each of `indices` has been delivered `times` times.
        func wait(for indices: [Int], times: Int = 1) -> Bool {
            // edu takes about 100 ms per DMA: a message and its two summary writes.
            let deadline = ContinuousClock.now + .milliseconds(500 * indices.count + 2000)
            while ContinuousClock.now < deadline {
                if indices.allSatisfy({ count($0) >= times }) { return true }
                usleep(5000)
            }
            return false
        }

        func close() {
            domain.close()
            try? device.setBusMaster(false)
            try? device.interrupts.disable(.msi)
        }
    }
}
