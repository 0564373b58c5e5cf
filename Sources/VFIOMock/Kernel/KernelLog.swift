import PCI
import SystemPackage

/// The kernel log as `/dev/kmsg` serves it: one record per read(2), formatted
/// `priority,sequence,microseconds,flags;message\n`, reading from the start of the ring, and
/// EAGAIN at its end (the mock never blocks, even without O_NONBLOCK).
///
/// The mock IOMMU logs each fault here the way intel-iommu does, so code that watches the
/// kernel log for DMAR faults sees the same lines on the mock as on a real machine.
struct KernelLog {
    private(set) var messages: [String] = []

    mutating func append(_ message: String) { messages.append(message) }

    /// intel-iommu's report of a refused translation (`dmar_fault_do_one`).
    mutating func logDMARFault(_ fault: DMAFault) {
        let device = String(fault.device.description.suffix(7))
        let (reason, text) = fault.isWrite ? ("0x05", "PTE Write access is not set") : ("0x06", "PTE Read access is not set")
        append(
            "DMAR: [DMA \(fault.isWrite ? "Write" : "Read") NO_PASID] Request device [\(device)] fault addr 0x\(String(fault.iova, radix: 16)) [fault reason \(reason)] \(text)"
        )
    }

    /// Record `index` as /dev/kmsg formats it, or nil past the end.
    func record(_ index: Int) -> [UInt8]? {
        guard index < messages.count else { return nil }
        return Array("3,\(index),\(index * 1000),-;\(messages[index])\n".utf8)
    }

    /// read(2) of record `index` into `buffer`: EAGAIN at the end, EINVAL when it does not fit.
    func read(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        guard let bytes = record(index) else { throw .wouldBlock }
        guard bytes.count <= buffer.count else { throw .invalidArgument }
        buffer.copyBytes(from: bytes)
        return bytes.count
    }
}
