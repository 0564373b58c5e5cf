#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Handing DMA buffers to a successor: a buffer given up with ``DMABuffer/handOver()`` keeps
/// its memfd, its IOMMU mapping and its IOVA as a ``DMAPiece``; ``adopt(pieces:)`` takes pieces
/// into a space (the same one, or a new one over the same IOMMU), ``claim(_:)`` makes each a
/// ``DMABuffer`` again at the same device address, and ``releaseHandedOver()`` frees the rest.
extension DMASpace {
    /// The pieces handed over or adopted and not claimed yet, by IOVA. The IOMMU still maps them.
    public var handedOver: [DMAPiece] {
        state.withLock { $0.handedOver.values.sorted { $0.deviceAddress < $1.deviceAddress } }
    }

    /// Takes `pieces` into this space, all or none: each must lie, whole pages at an aligned
    /// IOVA, inside the space's IOVA ranges, overlap nothing in use and have a file of its own.
    /// A piece this space handed over itself is taken as it is; any other is reserved at its
    /// exact IOVA, and the caller vouches that the context's IOMMU maps it there (its
    /// predecessor mapped it, and the container or IOAS stayed open). The space owns the
    /// pieces' files from now on; when this throws, the caller still does.
    public func adopt(pieces: [DMAPiece]) throws(VFIOError) {
        guard let first = pieces.first else { return }
        let pageSize = Int64(sysconf(Int32(_SC_PAGESIZE)))
        try state.withLock { (s) throws(VFIOError) in
            guard !s.closed else { throw .contextClosed(operation: "adopting \(pieces.count) handed-over DMA buffers") }
            guard s.mapper?.translates == true, s.allocator != nil else {
                throw .dmaPieceRefused(first, reason: "the context has no IOMMU mapping it (no device yet, or DMA by physical address)")
            }
            var added: [UInt64] = []
            do throws(VFIOError) {
                for piece in pieces {
                    if let problem = Self.problem(with: piece, alignment: s.allocator!.alignment, pageSize: pageSize) {
                        throw .dmaPieceRefused(piece, reason: problem)
                    }
                    if let pending = s.handedOver[piece.deviceAddress] {
                        guard pending == piece else {
                            throw .dmaPieceRefused(piece, reason: "the context holds another piece at that IOVA: \(pending)")
                        }
                        continue
                    }
                    if let other = s.handedOver.values.first(where: { $0.file == piece.file }) {
                        throw .dmaPieceRefused(
                            piece,
                            reason:
                                "its file is also the piece's at IOVA 0x\(String(other.deviceAddress, radix: 16)); give each piece a file of its own"
                        )
                    }
                    do throws(VFIOError) { try s.allocator!.reserve(piece.deviceAddress, size: piece.length) } catch {
                        guard case .iovaUnavailable(_, _, let reason) = error else { throw error }
                        throw .dmaPieceRefused(piece, reason: reason)
                    }
                    s.handedOver[piece.deviceAddress] = piece
                    added.append(piece.deviceAddress)
                }
            } catch {
                for iova in added {
                    s.handedOver[iova] = nil
                    try? s.allocator!.release(iova)
                }
                throw error
            }
        }
    }

    /// Makes the piece held at `piece`'s IOVA a buffer again: its file is mapped for the CPU,
    /// and the buffer has the same device address and contents. The piece must be the one this
    /// space holds (handed over or adopted), field for field.
    public func claim(_ piece: DMAPiece) throws(VFIOError) -> DMABuffer {
        let (id, memory) = try state.withLock { (s) throws(VFIOError) -> (UInt64, UnsafeMutableRawPointer) in
            guard !s.closed else { throw .contextClosed(operation: "claiming the DMA buffer handed over as \(piece)") }
            guard let pending = s.handedOver[piece.deviceAddress] else {
                throw .dmaPieceRefused(piece, reason: "the context holds no piece at that IOVA: adopt it first")
            }
            guard pending == piece else { throw .dmaPieceRefused(piece, reason: "the piece the context holds at that IOVA is \(pending)") }
            let memory: UnsafeMutableRawPointer
            do throws(Errno) {
                memory = try system.mmap(
                    length: piece.length, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_POPULATE, fd: piece.file,
                    offset: piece.offset)
            } catch {
                throw .dmaPieceRefused(piece, reason: "mapping its file failed: \(error) (errno \(error.rawValue))")
            }
            s.handedOver[piece.deviceAddress] = nil
            let id = s.nextID
            s.nextID += 1
            s.mappings[id] = Mapping(
                deviceAddress: piece.deviceAddress, memory: UInt(bitPattern: memory), length: piece.length, owned: true, file: piece.file,
                mapped: true)
            return (id, memory)
        }
        let bytes = UnsafeMutableRawBufferPointer(start: memory, count: piece.length)
        return DMABuffer(bytes: bytes, deviceAddress: piece.deviceAddress, handle: MappingHandle(id: id, space: self))
    }

    /// Frees the pieces handed over or adopted and not claimed (of those in `pieces`, when
    /// given): each is unmapped from the IOMMU, its IOVA released and its file closed. For a
    /// successor that will not adopt them (it resets the device instead). Returns how many
    /// were freed.
    @discardableResult
    public func releaseHandedOver(_ pieces: [DMAPiece]? = nil) -> Int {
        let files = state.withLock { Self.releasePieces(&$0, only: pieces) }
        for file in files { try? system.close(file) }
        return files.count
    }

    /// Hands buffer `id` over (``DMABuffer/handOver()``); on failure the buffer is freed.
    func handOver(id: UInt64) throws(VFIOError) -> DMAPiece {
        let taken = state.withLock { (s) -> Result<(DMAPiece, UInt), VFIOError> in
            guard let m = s.mappings[id] else {
                return .failure(.invalidArgument(operation: "handing over DMA mapping \(id)", reason: "it was freed already"))
            }
            let operation = "handing over the DMA buffer at 0x\(String(m.deviceAddress, radix: 16))"
            guard m.owned, let file = m.file else {
                return .failure(
                    .invalidArgument(
                        operation: operation,
                        reason: "its memory is not in a memfd (there is no IOMMU), so no successor could reach it at the same address"))
            }
            guard m.mapped, !s.closed else {
                return .failure(
                    .invalidArgument(
                        operation: operation, reason: "the IOMMU no longer maps it (the context closed, or every mapping was removed)"))
            }
            s.mappings[id] = nil
            let piece = DMAPiece(file: file, length: m.length, deviceAddress: m.deviceAddress)
            s.handedOver[m.deviceAddress] = piece
            return .success((piece, m.memory))
        }
        switch taken {
        case .failure(let error):
            try? free(id: id)
            throw error
        case .success(let (piece, memory)):
            // The process's view goes, as at exit; the IOMMU keeps the pages.
            if let p = UnsafeMutableRawPointer(bitPattern: memory) { try? system.munmap(p, length: piece.length) }
            return piece
        }
    }

    /// What is wrong with a piece's shape, if anything.
    private static func problem(with piece: DMAPiece, alignment: UInt64, pageSize: Int64) -> String? {
        if piece.file.rawValue < 0 { return "it has no file (descriptor \(piece.file.rawValue))" }
        if piece.length <= 0 || UInt64(piece.length) % alignment != 0 {
            return "its length is not a positive multiple of the IOMMU's \(alignment)-byte pages"
        }
        if piece.deviceAddress % alignment != 0 { return "its IOVA is not a multiple of the IOMMU's \(alignment)-byte pages" }
        if piece.offset < 0 || piece.offset % pageSize != 0 {
            return "its offset in the file is not a multiple of the \(pageSize)-byte page size"
        }
        return nil
    }

    /// Unmaps every piece not claimed (of `only`, when given), releases its IOVA and returns
    /// the files to close.
    static func releasePieces(_ s: inout State, only: [DMAPiece]? = nil) -> [FileDescriptor] {
        let pieces = s.handedOver.values.filter { only?.contains($0) ?? true }
        for piece in pieces {
            s.handedOver[piece.deviceAddress] = nil
            try? s.mapper?.unmap(iova: piece.deviceAddress, length: piece.length)
            try? s.allocator?.release(piece.deviceAddress)
        }
        return pieces.map(\.file)
    }
}
