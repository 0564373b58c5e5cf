#if canImport(Glibc)
import Glibc
#endif

/// A function bound to `uio_pci_generic` and its `/dev/uioN` (`drivers/uio/uio.c`).
///
/// INTx is the only interrupt. The handler masks the line with the command register's
/// INTx-disable bit (`pci_check_and_mask_intx`) and counts the event; userspace re-enables
/// it by clearing that bit through the sysfs `config` file. uio_pci_generic has no
/// `irqcontrol`, so writing to `/dev/uioN` fails with `ENOSYS`, as on Linux.
final class UIODevice: InterruptRouter {
    let function: PCIFunction
    let index: Int
    /// The 32-bit event counter `read` returns.
    private(set) var eventCount: Int32 = 0
    /// Open files of `/dev/uioN`, each with its own last-seen count.
    var listeners: [OpenFile] = []
    var lastSeen: [ObjectIdentifier: Int32] = [:]
    /// Unbound from uio_pci_generic: open files read `EIO`.
    var removed = false

    init(function: PCIFunction, index: Int) {
        self.function = function
        self.index = index
    }

    var hasIRQ: Bool { function.description.interruptPin != 0 && !removed }

    /// uio_pci_generic's memory maps: 32-bit, non-prefetchable memory BARs, in BAR order.
    var maps: [BARDescription] {
        function.description.bars.filter { !$0.is64Bit && !$0.prefetchable }.sorted { $0.index < $1.index }
    }

    func intxFired(_ function: PCIFunction) {
        function.hostSet(config: PCIConfig.command, width: 2, value: UInt32(function.command | PCIConfig.commandINTxDisable))
        eventCount &+= 1
        for l in listeners { signalEventFD(l.placeholder) }
    }

    func messageTarget(msix: Bool, vector: Int) -> Int32? { nil }

    /// uio_pci_generic's `release`: bus mastering off, so a closed driver leaves no DMA.
    func release() {
        function.hostSet(config: PCIConfig.command, width: 2, value: UInt32(function.command & ~PCIConfig.commandBusMaster))
    }

    /// `uio_mmap`: map N is at offset N pages; only shared-memory BARs can be mapped here.
    func mapTarget(index: Int, length: Int) throws(Errno) -> (fd: Int32, offset: Int64) {
        guard index < maps.count else { throw .invalidArgument }
        let bar = maps[index]
        guard let memory = function.barMemory[bar.index] else { throw .noSuchAddressOrDevice }
        guard length <= (bar.size + 4095) & ~4095 else { throw .invalidArgument }
        return (memory.fd, 0)
    }
}

import SystemPackage

extension MockKernel {
    /// `uio_read`: exactly 4 bytes; returns the event count once it differs from what this
    /// file last saw, blocking (or `EAGAIN` with `O_NONBLOCK`) until then.
    func uioRead(_ u: UIODevice, _ file: OpenFile, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        guard buffer.count == 4 else { throw .invalidArgument }
        return try lock.withLock { () throws(Errno) -> Int in
            while true {
                guard u.hasIRQ else { throw .ioError }
                guard files[file.placeholder] === file else { throw .badFileDescriptor }
                let seen = u.lastSeen[ObjectIdentifier(file)] ?? 0
                if u.eventCount != seen {
                    u.lastSeen[ObjectIdentifier(file)] = u.eventCount
                    buffer.storeBytes(of: u.eventCount, as: Int32.self)
                    var drain: UInt64 = 0
                    _ = Glibc.read(file.placeholder, &drain, 8)
                    return 4
                }
                if file.flags & O_NONBLOCK != 0 { throw .wouldBlock }
                lock.wait()
            }
        }
    }

    /// `uio_write`: 4 bytes, then `EIO` without an IRQ and `ENOSYS` for uio_pci_generic,
    /// which has no irqcontrol.
    func uioWrite(_ u: UIODevice, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        guard buffer.count == 4 else { throw .invalidArgument }
        guard u.hasIRQ else { throw .ioError }
        throw .noFunction
    }
}
