#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemPackage

/// A device's DMA: buffers the framework allocates, memory the driver brings, and the IOVAs
/// for both. With an IOMMU, IOVAs come from an ``IOVAAllocator`` that honours the kernel's
/// ranges, alignment and mapping limit; without one, the device address is physical.
///
/// Every mapping made here is undone when the device closes. Thread-safe.
public final class DMASpace: Sendable {
    let mapper: any DMAMapper
    private let system: any SystemCalls
    private struct State {
        var allocator: IOVAAllocator
        /// Live mappings by device address: the memory, and whether this space owns it.
        var mappings: [UInt64: (address: UInt, length: Int, owned: Bool)] = [:]
    }
    private let state: Mutex<State>
    private static let hugePageSize = 2 << 20

    init(mapper: any DMAMapper, system: any SystemCalls) {
        self.mapper = mapper
        self.system = system
        state = Mutex(State(allocator: IOVAAllocator(ranges: mapper.iovaRanges, alignment: mapper.iovaAlignment, mappingLimit: mapper.mappingLimit)))
    }

    /// True when device addresses are IOVAs translated by an IOMMU.
    public var translates: Bool { mapper.translates }
    /// The IOVA ranges the kernel allows, inclusive.
    public var iovaRanges: [ClosedRange<UInt64>] { mapper.iovaRanges }
    /// The kernel's cap on simultaneous mappings.
    public var mappingLimit: Int { mapper.mappingLimit }
    /// How many mappings are live.
    public var mappingCount: Int { state.withLock { $0.mappings.count } }
    /// The bytes the live mappings cover.
    public var mappedBytes: Int { state.withLock { $0.mappings.values.reduce(0) { $0 + $1.length } } }

    /// Allocates zeroed, page-aligned memory of at least `size` bytes and maps it for the
    /// device below `limit` (exclusive), for a device that cannot address more (edu: 2^28).
    /// Without an IOMMU the memory is locked hugepage memory (a single page when it fits),
    /// so it is resident and physically contiguous.
    public func allocate(_ size: Int, below limit: UInt64 = .max) throws(VFIOError) -> DMABuffer {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let physical = !mapper.translates
        let huge = size > pageSize && (physical || size >= Self.hugePageSize)
        let granule = huge ? Self.hugePageSize : pageSize
        let length = (size + granule - 1) / granule * granule
        var flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE
        if physical { flags |= MAP_LOCKED }
        let memory: UnsafeMutableRawPointer
        do {
            memory = try system.mmap(length: length, protection: PROT_READ | PROT_WRITE, flags: huge ? flags | MAP_HUGETLB : flags, fd: nil, offset: 0)
        } catch where huge && !physical {
            memory = try attempt("mmap \(length) bytes for DMA") { () throws(Errno) in
                try system.mmap(length: length, protection: PROT_READ | PROT_WRITE, flags: flags, fd: nil, offset: 0)
            }
        } catch {
            throw .operationUnsupported("cannot allocate \(length) bytes of hugepage memory for DMA without an IOMMU (\(error)): reserve hugepages with `echo 64 > /proc/sys/vm/nr_hugepages`")
        }
        let bytes = UnsafeMutableRawBufferPointer(start: memory, count: length)
        do {
            let address = try map(bytes, below: limit, owned: true)
            return DMABuffer(bytes: bytes, deviceAddress: address)
        } catch {
            try? system.munmap(memory, length: length)
            throw error
        }
    }

    /// Maps memory the caller owns (page-aligned, a whole number of pages) and returns its
    /// device address. The caller keeps it alive until ``unmap(_:)``.
    public func map(_ memory: UnsafeMutableRawBufferPointer, below limit: UInt64 = .max) throws(VFIOError) -> UInt64 {
        try map(memory, below: limit, owned: false)
    }

    private func map(_ memory: UnsafeMutableRawBufferPointer, below limit: UInt64, owned: Bool) throws(VFIOError) -> UInt64 {
        try state.withLock { (s) throws(VFIOError) -> UInt64 in
            let address: UInt64
            if mapper.translates {
                let iova = try s.allocator.allocate(size: memory.count, below: limit)
                do throws(VFIOError) { address = try mapper.map(memory, at: iova) } catch {
                    try? s.allocator.release(iova)
                    throw error
                }
            } else {
                address = try mapper.map(memory, at: 0)
                guard address + UInt64(memory.count) <= limit else {
                    try? mapper.unmap(iova: address, length: memory.count)
                    throw .beyondDeviceReach(physicalAddress: address, size: memory.count, limit: limit)
                }
            }
            s.mappings[address] = (UInt(bitPattern: memory.baseAddress), memory.count, owned)
            return address
        }
    }

    /// Unmaps a buffer from ``allocate(_:below:)`` and frees its memory.
    public func free(_ buffer: DMABuffer) throws(VFIOError) {
        try unmap(buffer.deviceAddress)
    }

    /// Removes the mapping at `deviceAddress`; memory this space allocated is freed too.
    /// Unknown addresses are rejected with ``VFIOError/unknownMapping(iova:length:)``.
    public func unmap(_ deviceAddress: UInt64) throws(VFIOError) {
        try state.withLock { (s) throws(VFIOError) in
            guard let m = s.mappings[deviceAddress] else { throw .unknownMapping(iova: deviceAddress, length: 0) }
            try mapper.unmap(iova: deviceAddress, length: m.length)
            s.mappings[deviceAddress] = nil
            if mapper.translates { try? s.allocator.release(deviceAddress) }
            if m.owned, let p = UnsafeMutableRawPointer(bitPattern: m.address) { try? system.munmap(p, length: m.length) }
        }
    }

    /// Undoes every mapping and frees the memory this space allocated, leaving the address
    /// space open for new ones. Buffers handed out before are invalid afterwards.
    public func unmapAll() {
        state.withLock { s in
            for (address, m) in s.mappings {
                try? mapper.unmap(iova: address, length: m.length)
                if mapper.translates { try? s.allocator.release(address) }
                if m.owned, let p = UnsafeMutableRawPointer(bitPattern: m.address) { try? system.munmap(p, length: m.length) }
            }
            s.mappings.removeAll()
        }
    }

    /// Undoes every mapping and releases the address space. Called when the device closes.
    func close() {
        unmapAll()
        mapper.close()
    }
}
