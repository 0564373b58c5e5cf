#if canImport(Glibc)
import Glibc
#endif
import Logging
import PCI
import SystemPackage

/// A DMA fault the IOMMU reported for a device: the device touched an address with no mapping
/// (or without the needed permission).
public struct IOMMUFault: Sendable, Equatable, CustomStringConvertible {
    /// The faulting I/O virtual address, as the IOMMU reported it.
    public let address: UInt64
    /// True when the faulting access was a DMA write, false for a read.
    public let isWrite: Bool
    /// The kernel's log line, as printed.
    public let message: String

    /// `IOMMU fault on write at 0x1000`, without the kernel's line.
    public var description: String { "IOMMU fault on \(isWrite ? "write" : "read") at 0x\(String(address, radix: 16))" }
}

/// Reads the IOMMU's fault reports for one device from the kernel log (`/dev/kmsg`), where
/// intel-iommu ("DMAR: [DMA Write ...] Request device [bb:dd.f] ... fault addr ...") and
/// AMD-Vi ("IO_PAGE_FAULT device=bb:dd.f ... address=...") print them. Only records logged
/// after the log was opened are returned.
public final class IOMMUFaultLog: Sendable {
    private let system: any SystemCalls
    private let fd: FileDescriptor
    private let address: PCIAddress
    private let logger: Logger

    /// Opens the kernel log for `address` and skips what is already there. Each fault read
    /// is also logged as a warning to `logger`.
    public init(address: PCIAddress, system: any SystemCalls = HostSystemCalls.shared, logger: Logger = .vfiokitSilent) throws(VFIOError) {
        self.system = system
        self.address = address
        self.logger = logger
        fd = try attempt(SystemCall("open", path: "/dev/kmsg")) { () throws(Errno) in try system.open("/dev/kmsg", O_RDONLY | O_NONBLOCK) }
        _ = readRecords()
    }

    /// Cannot fail in a way anyone could act on: the fault queue's file has nothing to flush,
    /// and Linux releases the descriptor even when close reports an error.
    deinit { try? system.close(fd) }

    /// Faults logged for this device since the last call (or since the log was opened).
    public func newFaults() -> [IOMMUFault] {
        let faults = readRecords().compactMap { Self.parse($0, device: address) }
        for fault in faults { logger.warning("IOMMU fault", metadata: ["device": "\(address)", "fault": "\(fault)"]) }
        return faults
    }

    /// Every record available now; /dev/kmsg returns one per read and EAGAIN at the end.
    private func readRecords() -> [String] {
        var records: [String] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            do {
                let n = try system.read(fd, into: buffer)
                if n <= 0 { break }
                records.append(String(decoding: buffer[..<n], as: UTF8.self))
            } catch .brokenPipe {
                continue  // the ring overwrote records we had not read; carry on from the next
            } catch {
                break
            }
        }
        return records
    }

    /// Parses one record ("prio,seq,time,flags;message") if it is a fault for `address`.
    static func parse(_ record: String, device address: PCIAddress) -> IOMMUFault? {
        let device = String(address.description.suffix(7))  // bb:dd.f, as the IOMMU drivers print it
        guard let semicolon = record.firstIndex(of: ";") else { return nil }
        let message = String(record[record.index(after: semicolon)...].prefix { $0 != "\n" })
        let intel = message.contains("DMAR:") && message.contains("Request device [\(device)]")
        let amd = message.contains("IO_PAGE_FAULT") && message.contains("device=\(device)")
        guard intel || amd else { return nil }
        guard let address = Self.hexField(after: intel ? "fault addr " : "address=", in: message) else { return nil }
        // AMD-Vi sets bit 5 of the event flags for a write.
        let isWrite = intel ? message.contains("DMA Write") : (Self.hexField(after: "flags=", in: message) ?? 0) & 0x20 != 0
        return IOMMUFault(address: address, isWrite: isWrite, message: message)
    }

    private static func hexField(after key: String, in text: String) -> UInt64? {
        guard let range = text.firstRange(of: key) else { return nil }
        var digits = text[range.upperBound...].prefix { $0.isHexDigit || $0 == "x" }
        if digits.hasPrefix("0x") { digits = digits.dropFirst(2) }
        return UInt64(digits, radix: 16)
    }
}
