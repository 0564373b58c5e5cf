import CBenchReference
import Foundation
import Synchronization
import VFIODrivers
import VFIOKit
import VFIOMock

/// A domain of `slots` IMS slots over the simulated IMS device's queue contexts (or its
/// DSA-layout table), with MSI-X vector 0 as the doorbell and vector 1 as a plain MSI-X
/// interrupt, both on one event loop. The device posts summaries. The bench has it write the
/// message (and its summaries) into the status area, then rings the doorbell through its bus,
/// as the device sends them.
final class IMSBenchRig: @unchecked Sendable {
    enum Store {
        /// `QueueContextStore`: message and mask in each queue's context in host memory, one
        /// batched commit (a context-reload doorbell).
        case queueContext
        /// `DSAInterruptTable` in the device's trapped BAR 0: one access per field, at most
        /// 63 × 256 slots.
        case dsaTable
    }

    /// Whether every slot shares one handler, or each has its own, as `allocate { }` makes.
    enum Handlers { case shared, distinct }

    /// The most slots a DSA-layout table holds: `GENCAP.max_ims_mult` is 6 bits.
    static let dsaTableSlots = 63 * 256

    let slots: Int
    let device: PCIDevice
    let bus: DeviceBus
    let simulated: IMSQueueDevice
    let loop: EventLoop
    let domain: IMSDomain
    let contexts: DMABuffer
    let handled = Atomic<UInt64>(0)
    let stamp = Atomic<UInt64>(0)
    let loopThreadID = Atomic<UInt>(0)
    /// The queue whose slot's handler ran last.
    let lastQueue = Atomic<Int>(-1)
    private var target: IMSSlot?
    private let store: Store
    /// The plain MSI-X vector's registration, kept for the rig's life.
    private var msixRegistration: EventLoop.Registration?
    /// Resident memory before the domain was made: what it and its slots add is measured from here.
    private let residentBefore: Int

    init(slots: Int, store kind: Store = .queueContext) throws {
        var options = IMSQueueDevice.Options()
        if kind == .dsaTable { options.imsMultiplier = (slots + 255) / 256 }
        // The figures time the framework, so the registers stay pread/pwrite (a call into the
        // mock) rather than a mapping whose every access is a signal, a cost of the mock's
        // trap that a device's mapped BAR does not have.
        options.mappableRegisters = false
        simulated = IMSQueueDevice(options: options)
        (device, bus) = try openSimulated(simulated)
        self.slots = slots
        let vectors = try device.interrupts.enable(.msix, vectors: 2)
        try device.setBusMaster(true)
        contexts = try device.dma.allocate(slots * IMSQueueRegisters.Context.size)
        let registers = try device.bar(0).mmio(IMSQueueRegisters.self)
        registers.write(IMSQueueRegisters.queueCount, UInt32(slots))
        registers.write(IMSQueueRegisters.contexts, contexts.deviceAddress)
        let store: any InterruptMessageStore
        switch kind {
        case .queueContext:
            registers.write(IMSQueueRegisters.control, IMSQueueRegisters.Control.enable | IMSQueueRegisters.Control.contextStore)
            store = try QueueContextStore(
                contexts: contexts.bytes.baseAddress!, queues: slots, layout: IMSQueueRegisters.Context.storeLayout,
                doorbell: IMSQueueRegisters.reloadDoorbell(registers))
        case .dsaTable:
            registers.write(IMSQueueRegisters.control, IMSQueueRegisters.Control.enable)
            store = try DSAInterruptTable(bar: try device.bar(0))
        }
        self.store = kind
        // The eventfds are the host kernel's, so the loop waits on them with real epoll, as in production.
        loop = try EventLoop()
        residentBefore = residentBytes()
        domain = try IMSDomain(
            store: store, device: device, delivery: .doorbell(vectors[0], loop), posting: IMSQueueRegisters.summaryPosting(registers),
            commitTimeout: .seconds(30))
        msixRegistration = try loop.register(vectors[1]) { [unowned(unsafe) self] _ in self.handle(queue: -1) }
        try loop.start()
    }

    var loopThread: pthread_t { pthread_t(loopThreadID.load(ordering: .relaxed)) }

    @inline(__always) private func handle(queue: Int) {
        lastQueue.store(queue, ordering: .relaxed)
        handle()
    }

    @inline(__always) private func handle() {
        stamp.store(cbench_now_ns(), ordering: .relaxed)
        loopThreadID.store(UInt(pthread_self()), ordering: .relaxed)
        handled.add(1, ordering: .releasing)
    }

    /// Allocates, programs and unmasks every slot in one batch, with one handler for all or one
    /// each. Returns the seconds it took and the memory the domain holds for its slots: its
    /// resident growth since before it was made (slot table, status area and, when distinct,
    /// the handlers; the device's contexts were allocated before).
    func programAll(_ handlers: Handlers) throws -> (seconds: Double, frameworkBytes: Int) {
        let shared = IMSHandler { [unowned(unsafe) self] slot in self.handle(queue: slot.index) }
        let start = cbench_now_ns()
        let last = try domain.batch { (b) throws(IMSError) -> IMSSlot in
            var slot: IMSSlot? = nil
            for i in 0..<slots {
                // A distinct closure per slot, capturing its own value, as `allocate { }` makes.
                let s = try b.allocate(
                    handler: handlers == .shared ? shared : IMSHandler { [unowned(unsafe) self] _ in self.handle(queue: i) })
                try b.unmask(s)
                slot = s
            }
            return slot!
        }
        let seconds = Double(cbench_now_ns() - start) / 1e9
        target = last
        return (seconds, residentBytes() - residentBefore)
    }

    /// The median cost of one demux pass that finds one pending slot, the `n`th pass's slot
    /// being `picks[n] % slots` in each rig (uniformly random, the same sequence for all), run on
    /// this thread; the rigs take their passes in turn, so that every rig sees the same machine.
    /// With an `evictor`, the core's caches are evicted after the device's message write and
    /// before each pass (cold); without, passes run back to back (hot).
    static func dispatchCosts(_ rigs: [IMSBenchRig], picks: [UInt64], evictor: CacheEvictor? = nil) -> [UInt64] {
        var costs = rigs.map { _ in [UInt64]() }
        for i in costs.indices { costs[i].reserveCapacity(picks.count) }
        for pick in picks {
            for (i, rig) in rigs.enumerated() { costs[i].append(rig.dispatchOnce(slot: Int(pick % UInt64(rig.slots)), evictor: evictor)) }
        }
        return costs.map { $0.sorted()[$0.count / 2] }
    }

    /// The device's message write for `slot` (read from its context, as the device reads it),
    /// then one demux pass, timed.
    private func dispatchOnce(slot: Int, evictor: CacheEvictor?) -> UInt64 {
        let context = contexts.bytes.baseAddress! + slot * IMSQueueRegisters.Context.size
        let layout = IMSQueueRegisters.Context.storeLayout
        simulated.writeMessage(
            address: context.load(fromByteOffset: layout.messageAddress, as: UInt64.self),
            data: context.load(fromByteOffset: layout.messageData, as: UInt32.self))
        evictor?.evict()
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

/// Evicts the core's private caches (L1 and L2) by reading a buffer twice the L2's size, one
/// load per cache line. The last-level cache, shared and far larger, is left as it is.
final class CacheEvictor: @unchecked Sendable {
    let bytes: Int
    private let buffer: UnsafeMutableRawPointer
    private var sink: UInt64 = 0

    init() {
        bytes = 2 * Self.levelTwoBytes()
        buffer = .allocate(byteCount: bytes, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 1, count: bytes)
    }

    deinit { buffer.deallocate() }

    func evict() {
        var sum: UInt64 = 0
        for offset in stride(from: 0, to: bytes, by: 64) { sum &+= buffer.load(fromByteOffset: offset, as: UInt64.self) }
        sink = sum
    }

    /// The L2 size from sysfs (`index2`, such as "2048K"), or 2 MiB when it cannot be read.
    private static func levelTwoBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/sys/devices/system/cpu/cpu0/cache/index2/size", encoding: .utf8) else {
            return 2 << 20
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let number = Int(trimmed.trimmingCharacters(in: CharacterSet.decimalDigits.inverted)), number > 0 else { return 2 << 20 }
        return number * (trimmed.hasSuffix("K") ? 1024 : trimmed.hasSuffix("M") ? 1 << 20 : 1)
    }
}
