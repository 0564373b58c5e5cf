#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import PCI
import SystemPackage

/// What `mmap` of a vfio-pci device region maps: a BAR's shared memory, or a register BAR
/// reached through a ``TrappedMapping``.
enum MapTarget {
    case memory(fd: Int32, offset: Int64)
    /// A register BAR of `function`; `vfio` is the vfio-pci device it was mapped through (nil
    /// for sysfs `resourceN`).
    case registers(PCIFunction, bar: Int, offset: Int, vfio: VFIOPCIDevice?)
}

extension BARDescription {
    /// Whether the BAR can be mapped: shared memory, and register BARs where CVFIO can trap
    /// their accesses.
    var isMappable: Bool {
        switch backing {
        case .sharedMemory: true
        case .registers: TrappedMapping.supported
        case .trapped: false
        }
    }
}

/// A register BAR mapped as vfio-pci maps it, whose device model still sees every access.
///
/// The mapping is address space with no access at all; each load and store through it faults,
/// and CVFIO's trap (`cvfio_mmio_trap.h`) performs it here, on the faulting thread, before the
/// instruction completes: the model's `readRegister`/`writeRegister`, one call per access of
/// the width the driver used, exactly as a trapped pread/pwrite or an MMIO exit to a
/// hypervisor's device model. The MSI-X table and PBA, which vfio-pci maps with the rest of
/// the BAR, are the function's own memory. While the command register's memory bit is clear
/// an access through vfio-pci gets what its fault handler gives, SIGBUS (the framework's
/// mapping guard turns the mapping into all ones); through sysfs `resourceN`, whose mappings
/// the kernel leaves alone, it reads all ones and writes go nowhere, as PCI does.
final class TrappedMapping: @unchecked Sendable {
    /// Whether this architecture's accesses can be trapped (x86-64); elsewhere register BARs
    /// are not mappable.
    static let supported = cvfio_trap_supported() != 0

    unowned let kernel: MockKernel
    let function: PCIFunction
    let vfio: VFIOPCIDevice?
    let bar: Int
    /// The BAR offset of the mapping's first byte.
    let base: Int
    let address: UnsafeMutableRawPointer
    let length: Int
    private var trap: Int32 = -1

    /// Reserves `length` bytes with no access and traps them. The kernel keeps the mapping
    /// until `munmap` calls ``untrap()``.
    init(kernel: MockKernel, function: PCIFunction, vfio: VFIOPCIDevice?, bar: Int, base: Int, length: Int) throws(Errno) {
        guard let p = Glibc.mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), p != MAP_FAILED else {
            throw Errno(rawValue: errno)
        }
        self.kernel = kernel
        self.function = function
        self.vfio = vfio
        self.bar = bar
        self.base = base
        self.address = p
        self.length = length
        let trap = cvfio_trap_mapping(p, length, trapHandler, Unmanaged.passUnretained(self).toOpaque())
        guard trap >= 0 else {
            Glibc.munmap(p, length)
            throw Errno(rawValue: -trap)
        }
        self.trap = trap
    }

    /// Ends the trap; accesses after it fault as on any unmapped memory.
    func untrap() {
        guard trap >= 0 else { return }
        _ = cvfio_untrap_mapping(trap)
        trap = -1
    }

    private enum Route {
        case revoke
        case done(UInt64)
        case model(SimulatedDevice)
    }

    /// One access at `offset` in the mapping; returns the trap's outcome and a load's value.
    func access(offset: Int, width: Int, store: Bool, value: UInt64) -> (outcome: Int32, value: UInt64) {
        let at = base + offset
        let ones: UInt64 = width == 8 ? ~0 : (1 << UInt64(width * 8)) - 1
        let route = kernel.lock.withLock { () -> Route in
            kernel.trappedMappingAccesses += 1
            let command = vfio.map { UInt16($0.vconfig[PCIConfig.command]) } ?? function.command
            guard command & PCIConfig.commandMemory != 0 else { return vfio == nil ? .done(ones) : .revoke }
            if let vfio, vfio.lowPowerEngaged { return .revoke }
            guard let size = function.description.bars.first(where: { $0.index == bar })?.size, at + width <= size else {
                return .done(ones)
            }
            guard let p = function.msixStructure(bar: bar, offset: at) else { return .model(function.device) }
            var v: UInt64 = 0
            for i in 0..<width {
                if store {
                    p.storeBytes(of: UInt8(truncatingIfNeeded: value >> UInt64(8 * i)), toByteOffset: i, as: UInt8.self)
                } else {
                    v |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << UInt64(8 * i)
                }
            }
            return .done(v)
        }
        switch route {
        case .revoke: return (Int32(CVFIO_TRAP_REVOKE), 0)
        case .done(let v): return (Int32(CVFIO_TRAP_DONE), v)
        case .model(let model):
            guard store else { return (Int32(CVFIO_TRAP_DONE), model.readRegister(bar: bar, offset: at, width: width)) }
            model.writeRegister(bar: bar, offset: at, width: width, value: value)
            return (Int32(CVFIO_TRAP_DONE), 0)
        }
    }
}

/// The trap's handler: the context is the ``TrappedMapping``, which the kernel keeps alive
/// while it is trapped.
private let trapHandler: cvfio_trap_handler = { context, offset, width, store, value, result in
    guard let context, let result else { return Int32(CVFIO_TRAP_REVOKE) }
    let mapping = Unmanaged<TrappedMapping>.fromOpaque(context).takeUnretainedValue()
    let r = mapping.access(offset: offset, width: Int(width), store: store != 0, value: value)
    result.pointee = r.value
    return r.outcome
}
