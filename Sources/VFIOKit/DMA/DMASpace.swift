#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Logging
import Synchronization
import SystemPackage

/// The DMA of one ``IOMMUContext``: buffers the framework allocates, memory the driver brings,
/// and the IOVAs for both. A mapping made here is reachable by every device in the context.
///
/// With an IOMMU, IOVAs come from an ``IOVAAllocator`` that honours the kernel's ranges,
/// alignment and mapping limit; without one, the device address is physical. Each mapping has
/// an identity of its own, so a buffer that was freed can never release one that reused its
/// IOVA. When the context closes every mapping is removed from the IOMMU; memory a live
/// ``DMABuffer`` holds is freed when that buffer goes. Thread-safe.
public final class DMASpace: Sendable {
    let system: any SystemCalls
    let logger: Logger
    struct Mapping {
        let deviceAddress: UInt64
        let memory: UInt
        let length: Int
        /// True when this space allocated the memory and frees it.
        let owned: Bool
        /// The memfd behind owned memory (with an IOMMU), closed when it is freed.
        let file: FileDescriptor?
        /// False once the context closed and the IOMMU forgot it.
        var mapped: Bool
    }
    struct State {
        var mapper: (any DMAMapper)?
        var ranges: [ClosedRange<UInt64>] = []
        var allocator: IOVAAllocator?
        var mappings: [UInt64: Mapping] = [:]
        var nextID: UInt64 = 1
        var closed = false
        /// Buffers handed over (or adopted) and not claimed, by IOVA: still mapped, IOVA reserved.
        var handedOver: [UInt64: DMAPiece] = [:]
    }
    let state = Mutex(State())
    private static let hugePageSize = 2 << 20

    init(system: any SystemCalls, logger: Logger) {
        self.system = system
        self.logger = logger
    }

    /// Starts translating through `mapper`, once the context's first device has set the IOMMU up.
    func install(_ mapper: any DMAMapper, ranges: [ClosedRange<UInt64>], alignment: UInt64) {
        state.withLock { s in
            s.mapper = mapper
            s.ranges = ranges
            s.allocator = mapper.translates ? IOVAAllocator(ranges: ranges, alignment: alignment, mappingLimit: mapper.mappingLimit) : nil
        }
    }

    /// Narrows the IOVA ranges after another device joined (its IOMMU may reserve more).
    func restrict(to ranges: [ClosedRange<UInt64>]) {
        state.withLock { s in
            s.ranges = IOVAAllocator.intersect(s.ranges, ranges)
            s.allocator?.restrict(to: ranges)
        }
    }

    /// True when device addresses are IOVAs translated by an IOMMU (false before the first device).
    public var translates: Bool { state.withLock { $0.mapper?.translates ?? false } }
    /// The IOVA ranges the kernel allows, inclusive (empty before the first device).
    public var iovaRanges: [ClosedRange<UInt64>] { state.withLock { $0.ranges } }
    /// The kernel's cap on simultaneous mappings.
    public var mappingLimit: Int { state.withLock { $0.mapper?.mappingLimit ?? 0 } }
    /// How many mappings the IOMMU holds now.
    public var mappingCount: Int { state.withLock { s in s.mappings.values.count { $0.mapped } + s.handedOver.count } }
    /// How many bytes the IOMMU maps now.
    public var mappedBytes: Int {
        state.withLock { s in
            s.mappings.values.reduce(0) { $0 + ($1.mapped ? $1.length : 0) } + s.handedOver.values.reduce(0) { $0 + $1.length }
        }
    }

    /// Allocates zeroed, page-aligned memory of at least `size` bytes and maps it for every
    /// device of the context, below `limit` (exclusive) for a device that cannot address more
    /// (edu: 2^28). With an IOMMU the memory is a memfd mapped shared (hugepages from 2 MiB up
    /// when the host has them), so a successor process can be handed its pages; without one it
    /// is locked hugepage memory (a single page when it fits), so it is resident and physically
    /// contiguous.
    public func allocate(_ size: Int, below limit: UInt64 = .max) throws(VFIOError) -> DMABuffer {
        guard size > 0 else { throw .invalidArgument(operation: "allocating DMA memory", reason: "the size is \(size); ask for at least 1 byte") }
        let physical = try state.withLock { (s) throws(VFIOError) -> Bool in
            guard !s.closed else { throw .contextClosed(operation: "allocating \(size) bytes of DMA memory") }
            guard let mapper = s.mapper else { throw .contextEmpty(operation: "allocating \(size) bytes of DMA memory") }
            return !mapper.translates
        }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let huge = size > pageSize && (physical || size >= Self.hugePageSize)
        let granule = huge ? Self.hugePageSize : pageSize
        let length = (size + granule - 1) / granule * granule
        let memory: UnsafeMutableRawPointer
        var file: FileDescriptor? = nil
        if physical {
            do {
                memory = try system.mmap(
                    length: length, protection: PROT_READ | PROT_WRITE,
                    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED | (huge ? MAP_HUGETLB : 0), fd: nil, offset: 0)
            } catch {
                throw .hugePagesUnavailable(bytes: length, errno: error)
            }
        } else {
            (memory, file) = try mapMemoryFile(length: length, huge: huge)
        }
        let bytes = UnsafeMutableRawBufferPointer(start: memory, count: length)
        do {
            let (address, id) = try map(bytes, below: limit, owned: true, file: file)
            return DMABuffer(bytes: bytes, deviceAddress: address, handle: MappingHandle(id: id, space: self))
        } catch {
            try? system.munmap(memory, length: length)
            if let file { try? system.close(file) }
            throw error
        }
    }

    /// DMA memory behind an IOMMU: a memfd of `length` bytes mapped shared, so its pages can be
    /// handed to another process, which maps the same file. Hugepages when `huge` and the host
    /// has them, else 4 KiB pages.
    private func mapMemoryFile(length: Int, huge: Bool) throws(VFIOError) -> (UnsafeMutableRawPointer, FileDescriptor) {
        func make(_ flags: UInt32) throws(Errno) -> (UnsafeMutableRawPointer, FileDescriptor) {
            let file = OwnedFileDescriptor(try system.memoryFile(name: "vfiokit-dma", size: length, flags: flags), name: "DMA memfd", system: system)
            let memory = try system.mmap(length: length, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_POPULATE, fd: file.rawValue, offset: 0)
            return (memory, file.release())
        }
        if huge {
            do { return try make(CVFIO_MFD_HUGETLB) } catch {
                logger.notice("no hugepages for a DMA buffer; using 4 KiB pages", metadata: ["bytes": "\(length)", "errno": "\(error)"])
            }
        }
        return try attempt(SystemCall("memfd_create", detail: "\(length) bytes for DMA")) { () throws(Errno) in try make(0) }
    }

    /// Maps memory the caller owns (page-aligned, a whole number of pages) for every device of
    /// the context. The caller keeps the memory alive while the returned mapping lives.
    public func map(_ memory: UnsafeMutableRawBufferPointer, below limit: UInt64 = .max) throws(VFIOError) -> DMAMapping {
        let (address, id) = try map(memory, below: limit, owned: false, file: nil)
        return DMAMapping(deviceAddress: address, count: memory.count, handle: MappingHandle(id: id, space: self))
    }

    private func map(_ memory: UnsafeMutableRawBufferPointer, below limit: UInt64, owned: Bool, file: FileDescriptor?) throws(VFIOError) -> (UInt64, UInt64) {
        try state.withLock { (s) throws(VFIOError) -> (UInt64, UInt64) in
            guard !s.closed else { throw .contextClosed(operation: "mapping \(memory.count) bytes for DMA") }
            guard let mapper = s.mapper else { throw .contextEmpty(operation: "mapping \(memory.count) bytes for DMA") }
            let address: UInt64
            if s.allocator != nil {
                let iova = try s.allocator!.allocate(size: memory.count, below: limit)
                do throws(VFIOError) { address = try mapper.map(memory, at: iova) } catch {
                    try? s.allocator!.release(iova)
                    throw error
                }
            } else {
                address = try mapper.map(memory, at: 0)
                guard address + UInt64(memory.count) <= limit else {
                    try? mapper.unmap(iova: address, length: memory.count)
                    throw .beyondDeviceReach(physicalAddress: address, size: memory.count, limit: limit)
                }
            }
            let id = s.nextID
            s.nextID += 1
            s.mappings[id] = Mapping(
                deviceAddress: address, memory: UInt(bitPattern: memory.baseAddress), length: memory.count, owned: owned, file: file, mapped: true)
            return (address, id)
        }
    }

    /// Removes mapping `id` from the IOMMU and frees memory this space allocated. An identity
    /// that is no longer live is an error and touches nothing.
    func free(id: UInt64) throws(VFIOError) {
        let (mapping, failure) = state.withLock { (s) -> (Mapping?, VFIOError?) in
            guard let m = s.mappings.removeValue(forKey: id) else { return (nil, nil) }
            guard m.mapped, let mapper = s.mapper else { return (m, nil) }
            do throws(VFIOError) {
                try mapper.unmap(iova: m.deviceAddress, length: m.length)
            } catch {
                // The IOMMU may still reach the memory, so it stays allocated and the entry live.
                s.mappings[id] = m
                return (nil, error)
            }
            try? s.allocator?.release(m.deviceAddress)
            return (m, nil)
        }
        if let failure { throw failure }
        guard let mapping else { throw .invalidArgument(operation: "freeing DMA mapping \(id)", reason: "it was freed already") }
        if mapping.owned, let p = UnsafeMutableRawPointer(bitPattern: mapping.memory) { try? system.munmap(p, length: mapping.length) }
        if let file = mapping.file { try? system.close(file) }
    }

    /// ``free(id:)`` for a buffer or mapping that went out of scope: what fails is logged.
    func release(id: UInt64) {
        do { try free(id: id) } catch {
            logger.error("releasing a DMA mapping failed", metadata: ["error": "\(error)"])
        }
    }

    /// Removes every mapping from the IOMMU and leaves the space open for new ones: no device
    /// of the context can reach any memory mapped before, buffers still alive keep their
    /// memory until they go, and pieces handed over and not claimed are released. For a host that has stopped every driver of the context and is about
    /// to reset its devices.
    public func unmapAll() {
        let files = state.withLock { s in
            Self.unmapEvery(&s, releasingIOVAs: true)
            return Self.releasePieces(&s)
        }
        for file in files { try? system.close(file) }
    }

    /// Removes every mapping from the IOMMU and releases the address space; memory of buffers
    /// still alive is freed when they go, and the files of pieces not claimed are closed.
    /// Called when the context closes.
    func close() {
        let (mapper, files) = state.withLock { (s) -> ((any DMAMapper)?, [FileDescriptor]) in
            guard !s.closed else { return (nil, []) }
            s.closed = true
            Self.unmapEvery(&s, releasingIOVAs: false)
            return (s.mapper, Self.releasePieces(&s))
        }
        for file in files { try? system.close(file) }
        mapper?.close()
    }

    private static func unmapEvery(_ s: inout State, releasingIOVAs: Bool) {
        for id in s.mappings.keys where s.mappings[id]!.mapped {
            try? s.mapper?.unmap(iova: s.mappings[id]!.deviceAddress, length: s.mappings[id]!.length)
            s.mappings[id]!.mapped = false
            if releasingIOVAs { try? s.allocator?.release(s.mappings[id]!.deviceAddress) }
        }
    }
}
