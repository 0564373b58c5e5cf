import VFIOKit

/// The data commands beyond Read and Write that a block export needs: Dataset Management
/// (deallocate), Write Zeroes and Compare. Each is refused before submission, with
/// ``NVMeError/unsupported(_:)``, when Identify Controller's ONCS says the controller lacks it.
extension NVMeDriver {
    /// Deallocates (trims) `ranges` of namespace `namespaceID` with Dataset Management. Their
    /// descriptors are written into `list` from `offset` (16 bytes each, at most 256 ranges),
    /// which must stay untouched until this returns. Whether the blocks then read as zeroes is
    /// the namespace's ``NVMeNamespaceIdentity/deallocatedReadsZero``.
    public func deallocate(
        namespace namespaceID: UInt32 = 1, ranges: some Collection<NVMeBlockRange>, list: borrowing DMABuffer, offset: Int = 0
    ) async throws(NVMeError) {
        try require(\.supportsDatasetManagement, "Dataset Management", bit: 2, instead: "leave the blocks allocated")
        let ns = try namespace(namespaceID)
        guard (1...NVMeBlockRange.maxRanges).contains(ranges.count) else {
            throw .invalidArgument("Dataset Management takes 1…\(NVMeBlockRange.maxRanges) ranges, not \(ranges.count)")
        }
        for r in ranges where r.blocks == 0 || r.lba >= ns.size || ns.size - r.lba < UInt64(r.blocks) {
            throw .invalidArgument("deallocating \(r.blocks) blocks at \(r.lba): outside namespace \(namespaceID) (\(ns.size) blocks), or empty")
        }
        let bytes = ranges.count * NVMeBlockRange.descriptorSize
        guard let data = NVMeDataRange(list, offset: offset, count: bytes) else {
            throw .invalidArgument("\(ranges.count) range descriptors (\(bytes) bytes) at offset \(offset) do not fit the \(list.count)-byte list buffer")
        }
        var at = list.bytes.baseAddress! + offset
        for r in ranges {
            r.store(to: at)
            at += NVMeBlockRange.descriptorSize
        }
        _ = try await perform(.deallocate(namespaceID: namespaceID, ranges: ranges.count), data)
    }

    /// Deallocates `blocks` blocks at `lba`: one range, its descriptor written into `list` at `offset`.
    public func deallocate(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: UInt32, list: borrowing DMABuffer, offset: Int = 0
    ) async throws(NVMeError) {
        try await deallocate(namespace: namespaceID, ranges: CollectionOfOne(NVMeBlockRange(lba: lba, blocks: blocks)), list: list, offset: offset)
    }

    /// Zeroes `blocks` blocks (at most 65536) at `lba` with Write Zeroes, no data transferred;
    /// they read as zeroes afterwards. With `deallocate`, DEAC is set where the namespace says
    /// Write Zeroes honours it (DLFEAT bit 3), so the controller may free the blocks instead.
    public func writeZeroes(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, deallocate: Bool = true, fua: Bool = false
    ) async throws(NVMeError) {
        try require(\.supportsWriteZeroes, "Write Zeroes", bit: 3, instead: "write a zeroed buffer")
        let ns = try namespace(namespaceID)
        try checkBlocks(ns, lba, blocks)
        let deac = deallocate && ns.writeZeroesCanDeallocate
        _ = try await perform(.writeZeroes(namespaceID: namespaceID, lba: lba, blocks: blocks, deallocate: deac, fua: fua), nil)
    }

    /// Compares `blocks` blocks at `lba` with `range` (exactly that many bytes): true when
    /// every byte is equal, false when the controller answers Compare Failure.
    public func compare(namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, with range: NVMeDataRange) async throws(NVMeError) -> Bool {
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
    public func compare(namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, with buffer: borrowing DMABuffer, offset: Int = 0) async throws(NVMeError) -> Bool {
        try await compare(namespace: namespaceID, lba: lba, blocks: blocks, with: range(buffer, offset, namespaceID, blocks))
    }

    /// Throws unless ONCS has the command's bit.
    private func require(_ supported: KeyPath<NVMeControllerIdentity, Bool>, _ command: String, bit: Int, instead: String) throws(NVMeError) {
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
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, into segments: borrowing NVMeSegments, mode: NVMeTransferMode = .automatic
    ) async throws(NVMeError) {
        try checkScatter(namespaceID, lba, blocks, segments)
        _ = try await perform(.readWrite(write: false, namespaceID: namespaceID, lba: lba, blocks: blocks), nil, segments: segments.ranges, mode: mode)
    }

    /// Writes `blocks` blocks at `lba` from `segments`; with `fua`, on media when it returns.
    public func write(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, from segments: borrowing NVMeSegments, fua: Bool = false,
        mode: NVMeTransferMode = .automatic
    ) async throws(NVMeError) {
        try checkScatter(namespaceID, lba, blocks, segments)
        _ = try await perform(.readWrite(write: true, namespaceID: namespaceID, lba: lba, blocks: blocks, fua: fua), nil, segments: segments.ranges, mode: mode)
    }

    private func checkScatter(_ namespaceID: UInt32, _ lba: UInt64, _ blocks: Int, _ segments: borrowing NVMeSegments) throws(NVMeError) {
        let ns = try namespace(namespaceID)
        try checkBlocks(ns, lba, blocks)
        guard segments.byteCount == blocks * ns.blockSize else {
            throw .invalidArgument("\(blocks) blocks of namespace \(namespaceID) are \(blocks * ns.blockSize) bytes, but the \(segments.count) segments hold \(segments.byteCount)")
        }
    }
}
