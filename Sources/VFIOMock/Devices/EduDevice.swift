import Dispatch
import Synchronization

/// QEMU's educational PCI device (`hw/misc/edu.c`, `docs/specs/edu.rst`): 1234:11e8,
/// revision 0x10, class 0x00ff00, one 1 MiB trap-and-emulate MMIO BAR, one MSI vector and
/// INTx.
///
/// Registers (BAR0): 0x00 ID 0x010000ed; 0x04 liveness (reads back the inverse of what was
/// written); 0x08 factorial (writing starts a computation on the device's worker unless one
/// is running); 0x20 status (bit 0 computing, read-only; bit 7 raise the FACT interrupt
/// 0x1 when done); 0x24 interrupt status; 0x60 raise (ORs the value in); 0x64 acknowledge
/// (clears bits; INTx drops when none remain); 0x80/0x88/0x90/0x98 DMA source,
/// destination, count and command (bit 0 start, bit 1 direction: 0 RAM → device buffer,
/// 1 device buffer → RAM, bit 2 raise the DMA interrupt 0x100 when done). Registers below
/// 0x80 take 4-byte accesses only, the DMA ones 4 or 8; other sizes read all ones and
/// ignore writes, as QEMU's.
///
/// The DMA engine moves between RAM and the internal 4 KiB buffer at device address
/// 0x40000, after ``Options/dmaDelay``. RAM addresses are masked to ``Options/dmaMask``
/// (QEMU's 28-bit `dma_mask`), and the bus refuses DMA while bus mastering is off. A
/// transfer outside the buffer is skipped (QEMU logs it and corrupts its own memory) but
/// the command still completes. Interrupts go out as MSI when enabled, else on INTx.
public final class EduDevice: SimulatedDevice {
    /// Where the model departs from QEMU's edu, for tests; the defaults are QEMU's device.
    public struct Options: Sendable {
        /// QEMU's `dma_mask` property.
        public var dmaMask: UInt64 = (1 << 28) - 1
        /// How long a DMA takes to complete (QEMU: 100 ms of virtual time).
        public var dmaDelay: Duration = .milliseconds(100)
        /// Adds an Advanced Features capability with FLR after MSI. QEMU's edu has none (nor
        /// PM or PCIe), so by default vfio-pci finds a reset only when the device sits alone
        /// on a non-root bus (a bus reset).
        public var supportsReset = false
        /// Adds a BAR2 of plain shared memory this size, for fast-path MMIO tests.
        public var ramBARSize: Int? = nil
        /// Whether BAR0 is mappable, as vfio-pci maps QEMU's edu (its registers still see every
        /// access); false stands for a register BAR vfio-pci cannot map (pread/pwrite only).
        public var mappableRegisters = true

        /// QEMU's edu: 28-bit DMA mask, 100 ms DMA, no FLR, no RAM BAR, BAR0 mappable.
        public init() {}
    }

    /// The device address of the DMA engine's internal buffer.
    public static let dmaBufferAddress: UInt64 = 0x40000
    /// The internal buffer's size in bytes.
    public static let dmaBufferSize = 4096
    /// The interrupt status bit raised when a factorial completes (with status bit 7 set).
    public static let factorialIRQ: UInt32 = 0x1
    /// The interrupt status bit raised when a DMA completes (with command bit 2 set).
    public static let dmaIRQ: UInt32 = 0x100

    private struct State {
        var liveness: UInt32 = 0
        var factorial: UInt32 = 0
        var status: UInt32 = 0
        var irqStatus: UInt32 = 0
        var dmaSource: UInt64 = 0
        var dmaDestination: UInt64 = 0
        var dmaCount: UInt64 = 0
        var dmaCommand: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: EduDevice.dmaBufferSize)
        /// Bumped by reset, so work queued before it completes into nothing.
        var generation = 0
    }

    /// The departures from QEMU's device it was made with.
    public let options: Options
    private let state = Mutex(State())
    private let worker = DispatchQueue(label: "edu-device")
    private let busBox = Mutex<DeviceBus?>(nil)

    /// A device in its power-on state.
    public init(options: Options = Options()) { self.options = options }

    /// 1234:11e8, revision 0x10, class 0x00ff00: BAR0 of 1 MiB registers, BAR2 of RAM when
    /// asked, one 64-bit MSI vector without masking, and INTA.
    public var description: DeviceDescription {
        var bars = [BARDescription(index: 0, size: 1 << 20, backing: options.mappableRegisters ? .registers : .trapped)]
        if let size = options.ramBARSize { bars.append(BARDescription(index: 2, size: size, backing: .sharedMemory)) }
        return DeviceDescription(
            vendorID: 0x1234, deviceID: 0x11e8, classCode: 0x00ff00, revision: 0x10, bars: bars, interruptPin: 1,
            msi: MSIDescription(vectors: 1, is64Bit: true, perVectorMasking: false), supportsReset: options.supportsReset)
    }

    /// Keeps `bus` for DMA and interrupts.
    public func attach(to bus: DeviceBus) { busBox.withLock { $0 = bus } }
    private var bus: DeviceBus? { busBox.withLock { $0 } }

    /// Serves the registers listed on ``EduDevice``; an unknown offset, a wrong width or another
    /// BAR reads all ones.
    public func readRegister(bar: Int, offset: Int, width: Int) -> UInt64 {
        let ones: UInt64 = width == 8 ? ~0 : (1 << UInt64(width * 8)) - 1
        guard bar == 0, width == 4 || (offset >= 0x80 && width == 8) else { return ones }
        let value: UInt64? = state.withLock { s in
            switch offset {
            case 0x00: 0x0100_00ed
            case 0x04: UInt64(s.liveness)
            case 0x08: UInt64(s.factorial)
            case 0x20: UInt64(s.status)
            case 0x24: UInt64(s.irqStatus)
            case 0x80: s.dmaSource
            case 0x88: s.dmaDestination
            case 0x90: s.dmaCount
            case 0x98: s.dmaCommand
            default: nil
            }
        }
        return (value ?? ~0) & ones
    }

    /// Acts on the registers listed on ``EduDevice``; writes to read-only or unknown registers, of
    /// the wrong width, or to the DMA registers while a DMA runs are ignored.
    public func writeRegister(bar: Int, offset: Int, width: Int, value: UInt64) {
        guard bar == 0, width == 4 || (offset >= 0x80 && width == 8) else { return }
        let v32 = UInt32(truncatingIfNeeded: value)
        switch offset {
        case 0x04: state.withLock { $0.liveness = ~v32 }
        case 0x08: startFactorial(v32)
        case 0x20:
            state.withLock { s in
                s.status = v32 & 0x80 != 0 ? s.status | 0x80 : s.status & ~0x80
            }
        case 0x60: raise(v32)
        case 0x64: lower(v32)
        case 0x80: state.withLock { s in if s.dmaCommand & 1 == 0 { s.dmaSource = value } }
        case 0x88: state.withLock { s in if s.dmaCommand & 1 == 0 { s.dmaDestination = value } }
        case 0x90: state.withLock { s in if s.dmaCommand & 1 == 0 { s.dmaCount = value } }
        case 0x98: startDMA(value)
        default: break
        }
    }

    /// Clears every register and the buffer; a factorial or DMA started before completes into
    /// nothing and raises no interrupt.
    public func reset() { state.withLock { s in s = State(generation: s.generation + 1) } }

    // MARK: Interrupts

    private func raise(_ bits: UInt32) {
        let pending = state.withLock { s in
            s.irqStatus |= bits
            return s.irqStatus != 0
        }
        guard pending, let bus else { return }
        if bus.msiEnabled { bus.signalMSI(vector: 0) } else { bus.setINTx(asserted: true) }
    }

    private func lower(_ bits: UInt32) {
        let idle = state.withLock { s in
            s.irqStatus &= ~bits
            return s.irqStatus == 0
        }
        guard idle, let bus, !bus.msiEnabled else { return }
        bus.setINTx(asserted: false)
    }

    // MARK: Factorial and DMA engines

    private func startFactorial(_ n: UInt32) {
        let generation: Int? = state.withLock { s in
            guard s.status & 1 == 0 else { return nil }
            s.factorial = n
            s.status |= 1
            return s.generation
        }
        guard let generation else { return }
        worker.async { [self] in
            var result: UInt32 = 1
            var k = n
            while k > 0 {
                result = result &* k
                k -= 1
            }
            let notify: Bool = state.withLock { s in
                guard s.generation == generation else { return false }
                s.factorial = result
                s.status &= ~1
                return s.status & 0x80 != 0
            }
            if notify { raise(Self.factorialIRQ) }
        }
    }

    private func startDMA(_ command: UInt64) {
        guard command & 1 != 0 else { return }
        let generation: Int? = state.withLock { s in
            guard s.dmaCommand & 1 == 0 else { return nil }
            s.dmaCommand = command
            return s.generation
        }
        guard let generation else { return }
        let nanoseconds = options.dmaDelay.components.seconds * 1_000_000_000 + options.dmaDelay.components.attoseconds / 1_000_000_000
        worker.asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [self] in runDMA(generation) }
    }

    private func runDMA(_ generation: Int) {
        let job: (toRAM: Bool, ram: UInt64, offset: Int, count: Int, irq: Bool)? = state.withLock { s in
            guard s.generation == generation, s.dmaCommand & 1 != 0 else { return nil }
            let toRAM = s.dmaCommand & 2 != 0
            let local = toRAM ? s.dmaSource : s.dmaDestination
            let ram = (toRAM ? s.dmaDestination : s.dmaSource) & options.dmaMask
            let inRange =
                local >= Self.dmaBufferAddress && s.dmaCount <= UInt64(Self.dmaBufferSize)
                && local - Self.dmaBufferAddress <= UInt64(Self.dmaBufferSize) - s.dmaCount
            return (
                toRAM, ram, inRange ? Int(local - Self.dmaBufferAddress) : -1, Int(min(s.dmaCount, 1 << 20)),
                s.dmaCommand & 4 != 0
            )
        }
        guard let job else { return }
        if job.offset >= 0, job.count > 0, let bus {
            if job.toRAM {
                let bytes = state.withLock { Array($0.buffer[job.offset..<job.offset + job.count]) }
                bytes.withUnsafeBytes { _ = bus.dmaWrite(iova: job.ram, from: $0) }
            } else {
                var bytes = [UInt8](repeating: 0, count: job.count)
                let ok = bytes.withUnsafeMutableBytes { bus.dmaRead(iova: job.ram, into: $0) }
                if ok { state.withLock { $0.buffer.replaceSubrange(job.offset..<job.offset + job.count, with: bytes) } }
            }
        }
        let done: Bool = state.withLock { s in
            guard s.generation == generation else { return false }
            s.dmaCommand &= ~1
            return true
        }
        if done && job.irq { raise(Self.dmaIRQ) }
    }
}
