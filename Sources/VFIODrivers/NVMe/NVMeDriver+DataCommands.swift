import VFIOKit

/// The data commands beyond Read and Write that a block export needs: Dataset Management
/// (deallocate), Write Zeroes and Compare. Each is refused before submission, with
/// ``NVMeError/unsupported(_:)``, when Identify Controller's ONCS says the controller lacks it.
extension NVMeDriver {
    /// Deallocates (trims) `ranges` of namespace `namespaceID` with Dataset Management. A range
    /// longer than the controller's DMRSL (``limits``) is split into ranges that are not; their
    /// descriptors are written into `list` from `offset` (16 bytes each), which must stay
    /// untouched until this returns. More ranges than DMRL (256 at most), or more blocks than
    /// DMSL, after that split are refused before submission. Whether the blocks then read as
    /// zeroes is the namespace's ``NVMeNamespaceIdentity/deallocatedReadsZero``.
    public func deallocate(
        namespace namespaceID: UInt32 = 1, ranges: some Collection<NVMeBlockRange>, list: borrowing DMABuffer, offset: Int = 0
    ) async throws(NVMeError) {
        try require(\.supportsDatasetManagement, "Dataset Management", bit: 2, instead: "leave the blocks allocated")
        let ns = try namespace(namespaceID)
        let step = UInt64(limits.deallocateRangeBlocks)
        var count: UInt64 = 0, total: UInt64 = 0
        for r in ranges {
            guard r.blocks > 0, r.lba < ns.size, ns.size - r.lba >= UInt64(r.blocks) else {
                throw .invalidArgument(
                    "deallocating \(r.blocks) blocks at \(r.lba): outside namespace \(namespaceID) (\(ns.size) blocks), or empty")
            }
            count += (UInt64(r.blocks) + step - 1) / step
            total += UInt64(r.blocks)
        }
        let most = min(limits.maxDeallocateRanges, NVMeBlockRange.maxRanges)
        guard count >= 1, count <= UInt64(most) else {
            let split =
                count > UInt64(ranges.count) ? " (\(ranges.count) split at the controller's \(step)-block range size limit, DMRSL)" : ""
            throw .invalidArgument(
                "Dataset Management takes 1…\(most) ranges on this controller (DMRL), not \(count)\(split): deallocate in several calls")
        }
        if let dmsl = limits.maxDeallocateBlocks, total > dmsl {
            throw .invalidArgument(
                "Dataset Management covers at most \(dmsl) blocks on this controller (DMSL), not \(total): deallocate in several calls")
        }
        let bytes = Int(count) * NVMeBlockRange.descriptorSize
        guard let data = NVMeDataRange(list, offset: offset, count: bytes) else {
            throw .invalidArgument(
                "\(count) range descriptors (\(bytes) bytes) at offset \(offset) do not fit the \(list.count)-byte list buffer")
        }
        var at = list.bytes.baseAddress! + offset
        for r in ranges {
            var lba = r.lba, left = UInt64(r.blocks)
            while left > 0 {
                let blocks = min(left, step)
                NVMeBlockRange(lba: lba, blocks: UInt32(blocks)).store(to: at)
                at += NVMeBlockRange.descriptorSize
                lba += blocks
                left -= blocks
            }
        }
        _ = try await perform(.deallocate(namespaceID: namespaceID, ranges: Int(count)), data)
    }

    /// Deallocates `blocks` blocks at `lba`: one range, its descriptor written into `list` at `offset`.
    public func deallocate(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: UInt32, list: borrowing DMABuffer, offset: Int = 0
    ) async throws(NVMeError) {
        try await deallocate(
            namespace: namespaceID, ranges: CollectionOfOne(NVMeBlockRange(lba: lba, blocks: blocks)), list: list, offset: offset)
    }

    /// Zeroes `blocks` blocks at `lba` with Write Zeroes, no data transferred; they read as
    /// zeroes afterwards. A run longer than one command may cover (65,536 blocks, or less as the
    /// controller's WZSL says: ``limits``) goes as several commands, one after another; when
    /// one fails, the blocks before it are zeroed and the error names the failing command. With
    /// `deallocate`, DEAC is set where the namespace says Write Zeroes honours it (DLFEAT bit 3),
    /// so the controller may free the blocks instead.
    public func writeZeroes(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, deallocate: Bool = true, fua: Bool = false
    ) async throws(NVMeError) {
        try require(\.supportsWriteZeroes, "Write Zeroes", bit: 3, instead: "write a zeroed buffer")
        let ns = try namespace(namespaceID)
        guard blocks >= 1, lba < ns.size, ns.size - lba >= UInt64(blocks) else {
            throw .invalidArgument(
                "zeroing \(blocks) blocks at LBA \(lba): outside namespace \(namespaceID) (\(ns.size) blocks of \(ns.blockSize) bytes), or none"
            )
        }
        let deac = deallocate && ns.writeZeroesCanDeallocate
        let step = Int(limits.writeZeroesBlocks(blockSize: ns.blockSize))
        var at = lba, left = blocks
        while left > 0 {
            let n = min(left, step)
            _ = try await perform(.writeZeroes(namespaceID: namespaceID, lba: at, blocks: n, deallocate: deac, fua: fua), nil)
            at += UInt64(n)
            left -= n
        }
    }

    /// Compares `blocks` blocks at `lba` with `range` (exactly that many bytes): true when
    /// every byte is equal, false when the controller answers Compare Failure.
    public func compare(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, with range: NVMeDataRange
    ) async throws(NVMeError) -> Bool {
        try require(\.supportsCompare, "Compare", bit: 0, instead: "read the blocks and compare them in memory")
        try checkRange(namespaceID, lba, blocks, range)
        do {
            _ = try await perform(.compare(namespaceID: namespaceID, lba: lba, blocks: blocks), range)
            return true
        } catch {
            if case let .failed(_, status) = error, status == .compareFailure { return false }
            throw error
        }
    }

    /// Compares with `buffer` from `offset`.
    public func compare(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, with buffer: borrowing DMABuffer, offset: Int = 0
    ) async throws(NVMeError) -> Bool {
        try await compare(namespace: namespaceID, lba: lba, blocks: blocks, with: range(buffer, offset, namespaceID, blocks))
    }

    /// Throws unless ONCS has the command's bit.
    private func require(_ supported: KeyPath<NVMeControllerIdentity, Bool>, _ command: String, bit: Int, instead: String) throws(NVMeError)
    {
        try checkUsable()
        guard let controller else { throw .invalidArgument("the driver is not brought up: call bringUp() first") }
        guard controller[keyPath: supported] else {
            throw .unsupported("the controller does not support \(command) (Identify Controller ONCS bit \(bit) is clear): \(instead)")
        }
    }
}

/// Scatter I/O: one command whose data lies in several DMA segments.
extension NVMeDriver {
    /// Reads `blocks` blocks at `lba` into `segments` (together exactly that many bytes), as
    /// PRPs or an SGL (`mode`); segments neither can describe are refused before submission.
    public func read(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, into segments: borrowing NVMeSegments,
        mode: NVMeTransferMode = .automatic
    ) async throws(NVMeError) {
        try checkScatter(namespaceID, lba, blocks, segments)
        _ = try await perform(
            .readWrite(write: false, namespaceID: namespaceID, lba: lba, blocks: blocks), nil, segments: segments.ranges, mode: mode)
    }

    /// Writes `blocks` blocks at `lba` from `segments`; with `fua`, on media when it returns.
    public func write(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, from segments: borrowing NVMeSegments, fua: Bool = false,
        mode: NVMeTransferMode = .automatic
    ) async throws(NVMeError) {
        try checkScatter(namespaceID, lba, blocks, segments)
        _ = try await perform(
            .readWrite(write: true, namespaceID: namespaceID, lba: lba, blocks: blocks, fua: fua), nil, segments: segments.ranges,
            mode: mode)
    }

    private func checkScatter(_ namespaceID: UInt32, _ lba: UInt64, _ blocks: Int, _ segments: borrowing NVMeSegments) throws(NVMeError) {
        let ns = try namespace(namespaceID)
        try checkBlocks(ns, lba, blocks)
        guard segments.byteCount == blocks * ns.blockSize else {
            throw .invalidArgument(
                "\(blocks) blocks of namespace \(namespaceID) are \(blocks * ns.blockSize) bytes, but the \(segments.count) segments hold \(segments.byteCount)"
            )
        }
    }
}
