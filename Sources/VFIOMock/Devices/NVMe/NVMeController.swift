import Foundation
import Synchronization

/// A simulated NVMe controller (class 0x010802, QEMU's 1b36:0010 IDs) implementing the NVMe
/// base specification for the admin and NVM commands a userspace driver needs: Identify
/// (controller, namespace, active namespace list, the NVM command set's limits), Create/Delete I/O SQ and CQ, Abort, Set and
/// Get Features (Number of Queues), Read, Write (with FUA), Flush, Compare, Write Zeroes and
/// Dataset Management (deallocate punches holes in an image) with PRP1/PRP2 and chained PRP
/// lists, or SGLs.
///
/// Queues live in host memory and are fetched and completed by DMA through the mock IOMMU, so a
/// PRP the driver did not map faults there and completes with Data Transfer Error. Each I/O
/// CQ signals its own MSI-X vector when created with interrupts enabled; the admin CQ uses
/// vector 0. Completions are written entry first, then the dword with the phase bit.
///
/// Two ways of running (``Options/Processing``):
/// - `.synchronous`: BAR 0 is trapped; every register write is handled on the writer's thread
///   before it returns, so a doorbell write has fetched, executed and completed the commands
///   it announced. Deterministic, for tests.
/// - `.thread`: BAR 0 is shared memory the driver maps, as on hardware; a controller thread
///   watches CC and the doorbells and does the work, spinning while busy and backing off to
///   sleeps when idle. It ends when the controller is released or ``stop()`` is called.
///   Driver and controller then share doorbells and queue entries through plain memory, as a
///   CPU and a device do, ordered by the CPU's memory model and the driver's barriers, which
///   ThreadSanitizer cannot see: it reports them, so TSan runs use `.synchronous`.
///
/// Faults to inject: ``stall(commands:admin:opcode:)`` (commands that never complete unless
/// aborted), ``injectFatalStatus()`` (CSTS.CFS), and in `NVMeController+Health` failure
/// statuses (retryable, with a Command Retry Delay, media errors), CFS mid-I/O, a controller that
/// does not come back after a reset, one that resets itself for a while (RDY drops, its
/// registers perhaps reading all ones meanwhile) and one that vanishes (every register reads all
/// ones); asynchronous events are raised
/// there too. An out-of-range LBA or unknown namespace is answered with its status as the spec says.
public final class NVMeController: SimulatedDevice, @unchecked Sendable {
    /// The controller's capabilities and identity, fixed when it is made.
    public struct Options: Sendable {
        /// Where commands are processed: on the writer's thread (`synchronous`, BAR 0 trapped) or on
        /// a controller thread of its own (`thread`, BAR 0 shared memory); see ``NVMeController``.
        public enum Processing: Sendable { case synchronous, thread }
        /// `.synchronous` by default.
        public var processing: Processing = .synchronous
        /// Entries per queue at most (CAP.MQES + 1).
        public var maxQueueEntries = 1024
        /// I/O queue pairs offered (QEMU's max_ioqpairs); MSI-X vectors are one more.
        public var ioQueuePairs = 16
        /// CAP.DSTRD: doorbells are 4 << stride bytes apart.
        public var doorbellStride = 0
        /// CAP.TO in 500 ms units.
        public var readyTimeout: UInt8 = 15
        /// MDTS: transfers up to 4 KiB << value (0: no limit). QEMU's default is 7.
        public var maxDataTransfer: UInt8 = 7
        /// ONCS: optional NVM commands offered; by default Compare (bit 0), Dataset Management
        /// (bit 2) and Write Zeroes (bit 3). A command whose bit is clear is an invalid opcode.
        public var optionalCommands: UInt16 = 0x000d
        /// VWC: a volatile write cache, which Flush commits. Without one every write is
        /// committed (an image's range msync'd) before it completes.
        public var volatileWriteCache = true
        /// DLFEAT of every namespace: 09h says deallocated blocks read as zeroes (bits 2:0 =
        /// 001b, which holds for this controller) and Write Zeroes honours DEAC (bit 3).
        public var deallocateFeatures: UInt8 = 0x09
        /// SGLS: bits 1:0 = 01b takes SGLs for NVM commands (Data Block, Segment and Last
        /// Segment descriptors) with no alignment rule, 10b with dword-aligned Data Blocks, 00b none.
        public var sglSupport: UInt32 = 0x1
        /// CRDT1–3: the Command Retry Delay Times, in 100 ms units, that a failure's CRD picks from
        /// once the host enables Advanced Command Retry (Host Behavior Support, feature 16h).
        public var commandRetryDelayTimes: [UInt16] = [0, 0, 0]
        /// The NVM command set's limits, reported by Identify CNS 06h (CSI 00h) and enforced: a
        /// Write Zeroes or Dataset Management past one is answered with Invalid Field in Command.
        /// nil: CNS 06h is not supported (Invalid Field), as on a controller before NVMe 2.0.
        public var nvmLimits: NVMLimits? = NVMLimits()
        /// Identify Controller's SN, space-padded or cut to 20 bytes.
        public var serial = "VFIOKIT-SIM-0001"
        /// Identify Controller's MN, space-padded or cut to 40 bytes.
        public var model = "VFIOKit simulated NVMe"
        /// Identify Controller's FR, space-padded or cut to 8 bytes.
        public var firmware = "1.0"

        /// The fields of the I/O Command Set specific Identify Controller data structure for the
        /// NVM command set, encoded as the NVM Command Set specification says; 0 sets no limit.
        public struct NVMLimits: Sendable {
            /// WZSL: Write Zeroes covers at most 2^value minimum memory pages (4 KiB here).
            public var writeZeroesSize: UInt8
            /// DMRL: the most ranges in one Dataset Management command.
            public var ranges: UInt8
            /// DMRSL: the most logical blocks in one Dataset Management range.
            public var rangeSize: UInt32
            /// DMSL: the most logical blocks in one Dataset Management command.
            public var size: UInt64

            /// The given limits; none by default.
            public init(writeZeroesSize: UInt8 = 0, ranges: UInt8 = 0, rangeSize: UInt32 = 0, size: UInt64 = 0) {
                self.writeZeroesSize = writeZeroesSize
                self.ranges = ranges
                self.rangeSize = rangeSize
                self.size = size
            }
        }

        /// QEMU-like defaults: 16 I/O queue pairs of up to 1024 entries, MDTS 7, a volatile write
        /// cache, synchronous processing.
        public init() {}
    }

    /// The options the controller was made with.
    public let options: Options
    /// The namespaces, NSID 1 first; attachment changes with ``setNamespace(_:attached:)``.
    public let namespaces: [NVMeNamespace]
    /// A pthread mutex (``KernelLock``), which ThreadSanitizer sees, around the engine.
    private let lock = KernelLock()
    private var engine: NVMeEngine
    private let privateRegisters: UnsafeMutableRawPointer?
    private let running = Atomic<Bool>(false)
    private let busBox = Mutex<DeviceBus?>(nil)

    /// A controller with `namespaces` as NSIDs 1, 2, ….
    public init(namespaces: [NVMeNamespace], options: Options = Options()) {
        precondition(options.maxQueueEntries >= 2 && options.maxQueueEntries <= 65536, "MQES out of range")
        precondition(options.ioQueuePairs >= 1 && options.ioQueuePairs < 2048, "ioQueuePairs out of range")
        self.options = options
        self.namespaces = namespaces
        var engine = NVMeEngine(options: options, namespaces: namespaces)
        if options.processing == .synchronous {
            let size = NVMeEngine.Offset.doorbells + NVMeEngine.doorbellAreaSize(options)
            let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
            privateRegisters = p
            engine.registers = p
            engine.powerOn()
        } else {
            privateRegisters = nil
        }
        self.engine = engine
    }

    deinit {
        engine.deallocate()
        privateRegisters?.deallocate()
    }

    /// BAR 0: registers, doorbells, then the MSI-X table and PBA (as QEMU lays it out).
    public var description: DeviceDescription {
        let registerSize = NVMeEngine.Offset.doorbells + NVMeEngine.doorbellAreaSize(options)
        let vectors = options.ioQueuePairs + 1
        let tableOffset = (registerSize + 4095) & ~4095
        let pbaOffset = (tableOffset + 16 * vectors + 4095) & ~4095
        var barSize = 16 * 1024
        while barSize < pbaOffset + 4096 { barSize *= 2 }
        return DeviceDescription(
            vendorID: 0x1b36, deviceID: 0x0010, classCode: 0x010802, revision: 2,
            bars: [
                BARDescription(index: 0, size: barSize, backing: options.processing == .thread ? .sharedMemory : .registers, is64Bit: true)
            ],
            interruptPin: 1,
            msix: MSIXDescription(tableSize: vectors, tableBAR: 0, tableOffset: tableOffset, pbaBAR: 0, pbaOffset: pbaOffset),
            isPCIExpress: true)
    }

    /// Keeps `bus` for DMA and MSI-X; with `.thread`, takes BAR 0's shared memory as the register
    /// file, powers on and starts the controller thread.
    public func attach(to bus: DeviceBus) {
        busBox.withLock { $0 = bus }
        withEngine { e in
            e.bus = bus
            if options.processing == .thread, let memory = bus.barMemory(0) {
                e.registers = memory.bytes.baseAddress
                e.registerMemory = memory
                e.powerOn()
            }
        }
        if options.processing == .thread { startThread() }
    }

    /// A 32- or 64-bit naturally aligned read of BAR 0's registers or doorbells (synchronous
    /// processing); anything else reads all ones.
    public func readRegister(bar: Int, offset: Int, width: Int) -> UInt64 {
        let ones: UInt64 = width == 8 ? ~0 : (1 << UInt64(width * 8)) - 1
        guard bar == 0, width == 4 || width == 8, offset % width == 0,
            offset + width <= NVMeEngine.Offset.doorbells + NVMeEngine.doorbellAreaSize(options)
        else { return ones }
        return withEngine { e in
            e.advanceInjectedReset()
            return width == 8 ? e.load64(offset) : UInt64(e.load32(offset))
        }
    }

    /// A register or doorbell write to BAR 0, acted on before it returns (synchronous processing):
    /// the commands a doorbell announces are fetched, executed and completed, and their vectors
    /// signalled. Writes to read-only or unknown registers, and any write once the controller has
    /// vanished, are ignored.
    public func writeRegister(bar: Int, offset: Int, width: Int, value: UInt64) {
        guard bar == 0 else { return }
        var vectors: [Int] = []
        withEngine { e in
            guard e.write(offset: offset, width: width, value: value) else { return }
            _ = e.service(interrupts: &vectors)
        }
        signal(vectors)
    }

    func withEngine<T>(_ body: (inout NVMeEngine) -> T) -> T { lock.withLock { body(&engine) } }

    /// Function-level reset: the controller is disabled and its registers return to power-on.
    public func reset() { withEngine { $0.powerOn() } }

    func signal(_ vectors: [Int]) {
        guard !vectors.isEmpty, let bus = busBox.withLock({ $0 }) else { return }
        for v in vectors { bus.signalMSIX(vector: v) }
    }

    // MARK: Fault injection and inspection

    /// The next `commands` commands on an I/O queue (or the admin queue) with `opcode` (any
    /// when nil) are fetched and never completed; an Abort for one completes it with Command
    /// Abort Requested, deleting its SQ with Command Aborted due to SQ Deletion. Stalls asked
    /// for together all hold; a command is held by the first that takes it.
    public func stall(commands: Int = 1, admin: Bool = false, opcode: UInt8? = nil) {
        guard commands > 0 else { return }
        withEngine { $0.stalls.append((commands, admin, opcode)) }
    }

    /// Detaches (`attached` false) or attaches namespace `id`: a detached one is inactive, left
    /// out of the Active Namespace ID list, identified as zeroes and answered Invalid Namespace.
    public func setNamespace(_ id: UInt32, attached: Bool) {
        withEngine { e in
            if attached { e.detached.remove(id) } else { e.detached.insert(id) }
        }
    }

    /// Sets CSTS.CFS: the controller stops processing commands until it is reset (CC.EN 1 → 0).
    public func injectFatalStatus() { withEngine { $0.setFatal() } }

    /// Commands fetched and held by ``stall(commands:admin:opcode:)``, not yet aborted.
    public var heldCommands: Int { withEngine { $0.held.count } }

    /// CSTS as the controller last set it.
    public var status: UInt32 { withEngine { $0.csts } }

    /// The I/O queue pairs that exist (SQ ids).
    public var ioSubmissionQueues: [Int] {
        withEngine { e in e.submissionQueues.indices.filter { $0 > 0 && e.submissionQueues[$0] != nil } }
    }

    // MARK: The controller thread

    /// Ends the controller thread (on `.thread`); the controller stops reacting to doorbells.
    public func stop() { running.store(false, ordering: .releasing) }

    private func startThread() {
        running.store(true, ordering: .releasing)
        let thread = Thread { [weak self] in
            var idle = 0
            var vectors: [Int] = []
            vectors.reserveCapacity(64)
            while let controller = self, controller.running.load(ordering: .acquiring) {
                vectors.removeAll(keepingCapacity: true)
                let worked = controller.withEngine { $0.service(interrupts: &vectors) }
                controller.signal(vectors)
                if worked { idle = 0; continue }
                idle += 1
                // Spin while busy; then yield the CPU in growing sleeps (≤ 1 ms).
                if idle > 2000 { usleep(idle > 50_000 ? 1000 : 50) }
            }
        }
        thread.name = "nvme-controller"
        thread.start()
    }
}
