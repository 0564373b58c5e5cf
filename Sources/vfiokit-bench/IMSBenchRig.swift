import CBenchReference
import Foundation
import Synchronization
import VFIODrivers
import VFIOKit
import VFIOMock

/// A domain of `slots` IMS slots over the simulated IMS device's queue contexts, with MSI-X
/// vector 0 as the doorbell and vector 1 as a plain MSI-X interrupt, both on one event loop.
/// The device posts summaries. The bench has it write the message (and its summaries) into
/// the status area, then rings the doorbell through its bus, as the device sends them.
final class IMSBenchRig: @unchecked Sendable {
    let slots: Int
    let device: PCIDevice
    let bus: DeviceBus
    let simulated = IMSQueueDevice()
    let loop: EventLoop
    let domain: IMSDomain
    let contexts: DMABuffer
    let handled = Atomic<UInt64>(0)
    let stamp = Atomic<UInt64>(0)
    let loopThreadID = Atomic<UInt>(0)
    private var target: IMSSlot?
    /// The plain MSI-X vector's registration, kept for the rig's life.
    private var msixRegistration: EventLoop.Registration?
    /// Resident memory before the domain was made: what it and its slots add is measured from here.
    private let residentBefore: Int

    init(slots: Int) throws {
        (device, bus) = try openSimulated(simulated)
        self.slots = slots
        let vectors = try device.interrupts.enable(.msix, vectors: 2)
        try device.setBusMaster(true)
        contexts = try device.dma.allocate(slots * IMSQueueRegisters.Context.size)
        let registers = try device.bar(0).mmio(IMSQueueRegisters.self)
        registers.write(IMSQueueRegisters.queueCount, UInt32(slots))
        registers.write(IMSQueueRegisters.contexts, contexts.deviceAddress)
        registers.write(IMSQueueRegisters.control, IMSQueueRegisters.Control.enable | IMSQueueRegisters.Control.contextStore)
        let store = try QueueContextStore(
            contexts: contexts.bytes.baseAddress!, queues: slots, layout: IMSQueueRegisters.Context.storeLayout,
            doorbell: IMSQueueRegisters.reloadDoorbell(registers))
        // The eventfds are the host kernel's, so the loop waits on them with real epoll, as in production.
        loop = try EventLoop()
        residentBefore = residentBytes()
        domain = try IMSDomain(
            store: store, device: device, delivery: .doorbell(vectors[0], loop), posting: IMSQueueRegisters.summaryPosting(registers),
            commitTimeout: .seconds(30))
        msixRegistration = try loop.register(vectors[1]) { [unowned(unsafe) self] _ in self.handle() }
        try loop.start()
    }

    var loopThread: pthread_t { pthread_t(loopThreadID.load(ordering: .relaxed)) }

    @inline(__always) private func handle() {
        stamp.store(cbench_now_ns(), ordering: .relaxed)
        loopThreadID.store(UInt(pthread_self()), ordering: .relaxed)
        handled.add(1, ordering: .releasing)
    }

    /// Allocates, programs and unmasks every slot in one batch, all sharing one handler.
    /// Returns the seconds it took and the memory the domain holds for its slots: its resident
    /// growth since before it was made (slot table and status area; the device's contexts were
    /// allocated before).
    func programAll() throws -> (seconds: Double, frameworkBytes: Int) {
        let handler = IMSHandler { [unowned(unsafe) self] _ in self.handle() }
        let start = cbench_now_ns()
        let last = try domain.batch { (b) throws(IMSError) -> IMSSlot in
            var slot: IMSSlot? = nil
            for _ in 0..<slots {
                let s = try b.allocate(handler: handler)
                try b.unmask(s)
                slot = s
            }
            return slot!
        }
        let seconds = Double(cbench_now_ns() - start) / 1e9
        target = last
        return (seconds, residentBytes() - residentBefore)
    }

    /// The median cost of one demux pass that finds one pending slot (each rig's last), run on
    /// this thread, for each rig; their `samples` are taken in turn, so that every rig sees the
    /// same machine (a noisy neighbour skews none of the ratios).
    static func dispatchCosts(_ rigs: [IMSBenchRig], samples: Int) -> [UInt64] {
        var costs = rigs.map { _ in [UInt64]() }
        for i in costs.indices { costs[i].reserveCapacity(samples) }
        for _ in 0..<samples {
            for (i, rig) in rigs.enumerated() { costs[i].append(rig.dispatchOnce()) }
        }
        return costs.map { $0.sorted()[$0.count / 2] }
    }

    /// The device's message write for the target slot, then one demux pass, timed.
    private func dispatchOnce() -> UInt64 {
        guard let target else { return 0 }
        simulated.writeMessage(address: domainAddress(target), data: target.tag)
        let start = cbench_now_ns()
        domain.poll()
        return cbench_now_ns() - start
    }

    /// Doorbell-to-handler latencies of the IMS slot and of MSI-X vector 1, alternating.
    func latencies(samples: Int) throws -> (ims: [UInt64], msix: [UInt64]) {
        var ims: [UInt64] = [], msix: [UInt64] = []
        for _ in 0..<samples {
            ims.append(try fireIMS())
            msix.append(try fire { self.bus.signalMSIX(vector: 1) })
        }
        return (ims, msix)
    }

    /// The device's message write for the target slot, then its doorbell; timed from the doorbell.
    func fireIMS() throws -> UInt64 {
        guard let target else { return 0 }
        simulated.writeMessage(address: domainAddress(target), data: target.tag)
        return try fire { self.bus.signalMSIX(vector: 0) }
    }

    private func fire(_ signal: () -> Void) throws -> UInt64 {
        let goal = handled.load(ordering: .acquiring) + 1
        let start = cbench_now_ns()
        signal()
        let deadline = start + 5_000_000_000
        while handled.load(ordering: .acquiring) < goal {
            guard cbench_now_ns() < deadline else { throw VFIOError.timeout(what: "an interrupt in the IMS bench", milliseconds: 5000) }
            sched_yield()
        }
        return stamp.load(ordering: .relaxed) &- start
    }

    private func domainAddress(_ slot: IMSSlot) -> UInt64 {
        (contexts.bytes.baseAddress! + slot.index * IMSQueueRegisters.Context.size + IMSQueueRegisters.Context.storeLayout.messageAddress)
            .load(as: UInt64.self)
    }

    func close() {
        domain.close()
        loop.stop()
        device.close()
    }
}

/// The process's resident memory in bytes (`/proc/self/statm`).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
