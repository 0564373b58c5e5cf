#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemPackage

/// DMA without an IOMMU (VFIO no-IOMMU and UIO): the device uses physical addresses, read
/// from `/proc/self/pagemap`. Memory must stay resident and physically contiguous, which
/// ``DMASpace`` ensures by allocating locked (huge) pages.
final class PhysicalAddressSpace: DMAMapper {
    private let system: any SystemCalls
    private let pagemap: FileDescriptor
    private let mapped = Mutex<[UInt64: Int]>([:])
    private let closed = Atomic<Bool>(false)
    let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    var translates: Bool { false }
    var mappingLimit: Int { Int(Int32.max) }

    /// Opens the pagemap.
    init(system: any SystemCalls) throws(VFIOError) {
        self.system = system
        pagemap = try attempt(SystemCall("open", path: "/proc/self/pagemap")) { () throws(Errno) in
            try system.open("/proc/self/pagemap", O_RDONLY)
        }
    }

    /// The physical address of the byte at `address`, which must be resident.
    func physicalAddress(of address: UnsafeRawPointer) throws(VFIOError) -> UInt64 {
        let virtual = UInt64(UInt(bitPattern: address))
        var entry: UInt64 = 0
        let n = try attempt(SystemCall("pread", path: "/proc/self/pagemap")) { () throws(Errno) -> Int in
            try withUnsafeMutableBytes(of: &entry) { (b) throws(Errno) -> Int in
                try system.pread(pagemap, into: b, at: Int64(virtual / pageSize * 8))
            }
        }
        let frame = entry & (1 << 55 - 1)
        guard n == 8, entry & (1 << 63) != 0, frame != 0 else {
            throw .physicalAddressUnavailable(virtualAddress: virtual)
        }
        return frame * pageSize + virtual % pageSize
    }

    func map(_ memory: UnsafeMutableRawBufferPointer, at iova: UInt64) throws(VFIOError) -> UInt64 {
        guard let base = memory.baseAddress, memory.count > 0 else {
            throw .invalidArgument(operation: "mapping memory for DMA", reason: "the buffer is empty")
        }
        let first = try physicalAddress(of: base)
        var offset = Int(pageSize - first % pageSize)
        while offset < memory.count {
            let physical = try physicalAddress(of: base + offset)
            guard physical == first + UInt64(offset) else {
                throw .notPhysicallyContiguous(size: memory.count)
            }
            offset += Int(pageSize)
        }
        mapped.withLock { $0[first] = memory.count }
        return first
    }

    func unmap(iova: UInt64, length: Int) throws(VFIOError) {
        guard mapped.withLock({ $0.removeValue(forKey: iova) }) == length else {
            throw .unknownMapping(iova: iova, length: length)
        }
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Cannot fail in a way that matters: /proc/self/pagemap is only read.
        try? system.close(pagemap)
    }
}
