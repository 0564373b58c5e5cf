#if canImport(Glibc)
import Glibc
#endif
import VFIOKit

extension NVMeDriver {
    // MARK: Admin commands

    /// Runs an admin command and waits for its completion (polling the admin CQ), at most
    /// ``Configuration/commandTimeout``. Returns DW0. A timeout, a controller reporting CSTS.CFS
    /// meanwhile, or one that resets itself meanwhile (CSTS.RDY drops: the command fails with
    /// ``NVMeError/interruptedByReset(command:)``) fails the command and has the controller
    /// reset in place.
    @discardableResult
    public func adminCommand(_ command: NVMeCommand, data: NVMeDataRange? = nil) throws(NVMeError) -> UInt32 {
        try checkUsable()
        do {
            return try admin.withLock { (a) throws(NVMeError) in
                guard let pair = a else { throw .invalidArgument("the driver is not brought up: call bringUp() first") }
                return try runAdmin(pair, command, data: data)
            }
        } catch {
            switch error {
            case let .timeout(name, _, _):
                requestRecovery(because: "admin command \(name) timed out")
            case .controllerFatal:
                requestRecovery(because: "the controller reported a fatal status (CSTS.CFS) during \(command.name(admin: true))")
            case .interruptedByReset:
                requestRecovery(
                    because: "CSTS.RDY dropped to 0 during \(command.name(admin: true)) (CFS clear): the controller reset itself")
            default: break
            }
            throw error
        }
    }

    /// Submits `command` on the admin queue `pair` (its lock held) and polls for its outcome,
    /// handing Asynchronous Event Request completions to the control thread meanwhile. Throws
    /// ``NVMeError/controllerFatal(step:)`` on CSTS.CFS, ``NVMeError/interruptedByReset(command:)``
    /// when RDY drops (the controller reset itself and lost the command) and a timeout after the
    /// command timeout.
    func runAdmin(_ pair: NVMeQueuePair, _ command: NVMeCommand, data: NVMeDataRange? = nil) throws(NVMeError) -> UInt32 {
        let cid = try pair.submit(command, data: data)
        pair.keepCompletion(cid)
        pair.ring()
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.commandTimeout
        var spins = 0
        while true {
            reapAdmin(pair)
            if let outcome = pair.takeOutcome(cid) { return try outcome.get() }
            // All ones is not CFS: the owners' ticks wait out the removal grace for it.
            let status = registers.read(NVMeRegisters.status)
            if status != ~0, status & NVMeControl.fatalStatus != 0 { throw .controllerFatal(step: command.name(admin: true)) }
            if status != ~0, status & NVMeControl.ready == 0 { throw .interruptedByReset(command: command.name(admin: true)) }
            if clock.now >= deadline {
                throw .timeout(
                    command: command.name(admin: true), milliseconds: timeoutMilliseconds,
                    recovery: "the driver resets the controller and initialises it again in place")
            }
            spins += 1
            if spins > 100 { usleep(100) }
        }
    }

    // MARK: The asynchronous block API

    /// Reads `blocks` blocks at `lba` of namespace `namespaceID` into `range`, which must hold
    /// exactly that many bytes.
    public func read(namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, into range: NVMeDataRange) async throws(NVMeError) {
        try checkRange(namespaceID, lba, blocks, range)
        _ = try await perform(.readWrite(write: false, namespaceID: namespaceID, lba: lba, blocks: blocks), range)
    }

    /// Writes `blocks` blocks at `lba` of namespace `namespaceID` from `range`, which must hold
    /// exactly that many bytes. With `fua` (Force Unit Access) it returns only once the data is
    /// on non-volatile media, whatever the write cache holds.
    public func write(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, from range: NVMeDataRange, fua: Bool = false
    ) async throws(NVMeError) {
        try checkRange(namespaceID, lba, blocks, range)
        _ = try await perform(.readWrite(write: true, namespaceID: namespaceID, lba: lba, blocks: blocks, fua: fua), range)
    }

    /// Reads into `buffer` from `offset`.
    public func read(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, into buffer: borrowing DMABuffer, offset: Int = 0
    ) async throws(NVMeError) {
        try await read(namespace: namespaceID, lba: lba, blocks: blocks, into: range(buffer, offset, namespaceID, blocks))
    }

    /// Writes from `buffer` at `offset`.
    public func write(
        namespace namespaceID: UInt32 = 1, lba: UInt64, blocks: Int, from buffer: borrowing DMABuffer, offset: Int = 0, fua: Bool = false
    ) async throws(NVMeError) {
        try await write(namespace: namespaceID, lba: lba, blocks: blocks, from: range(buffer, offset, namespaceID, blocks), fua: fua)
    }

    /// Commits the namespace's volatile write cache to media. A controller without one (VWC
    /// clear) has every completed write on media already: nothing is sent and this returns at once.
    public func flush(namespace namespaceID: UInt32 = 1) async throws(NVMeError) {
        try checkUsable()
        guard controller?.volatileWriteCache ?? true else { return }
        _ = try await perform(.flush(namespaceID: namespaceID), nil)
    }

    /// Submits `command` exactly as given (no range checks) and waits for it, for callers
    /// (and tests) that need a command the typed calls refuse to build.
    @discardableResult
    public func submit(_ command: NVMeCommand, data: NVMeDataRange? = nil) async throws(NVMeError) -> UInt32 {
        try await perform(command, data)
    }

    /// What I/O needs of a namespace: plain values, so a lookup copies no array.
    struct IONamespace {
        let id: UInt32
        let size: UInt64
        let blockSize: Int
        let writeZeroesCanDeallocate: Bool
    }

    /// Namespace `id` for I/O: it must be active and use a format without metadata.
    func namespace(_ id: UInt32) throws(NVMeError) -> IONamespace {
        let found = namespaceTable.withLock { table -> (IONamespace, metadata: Int)? in
            guard let i = table.firstIndex(where: { $0.id == id }) else { return nil }
            let ns = table[i]
            return (
                IONamespace(id: id, size: ns.size, blockSize: ns.blockSize, writeZeroesCanDeallocate: ns.writeZeroesCanDeallocate),
                ns.metadataSize
            )
        }
        guard let found else {
            throw .invalidArgument("namespace \(id) does not exist: the active namespaces are \(namespaces.map(\.id))")
        }
        guard found.metadata == 0 else { throw metadataRefusal(id) }
        return found.0
    }

    /// Why namespace `id`, formatted with metadata, takes no I/O from this driver.
    private func metadataRefusal(_ id: UInt32) -> NVMeError {
        guard let ns = namespaces.first(where: { $0.id == id }) else { return .invalidArgument("namespace \(id) does not exist") }
        let plain = ns.formats.indices.filter { ns.formats[$0].metadataSize == 0 && ns.formats[$0].dataSize > 0 }
        return .unsupported(
            "namespace \(id) uses LBA format \(ns.formatIndex) with \(ns.metadataSize) bytes of metadata per \(ns.blockSize)-byte block, "
                + "and the driver does not transfer metadata: format the namespace with a format without metadata"
                + (plain.isEmpty ? " (it offers none)" : " (here: \(plain.map(String.init).joined(separator: ", ")))"))
    }

    func range(_ buffer: borrowing DMABuffer, _ offset: Int, _ namespaceID: UInt32, _ blocks: Int) throws(NVMeError) -> NVMeDataRange {
        let bytes = try namespace(namespaceID).blockSize * max(blocks, 1)
        guard let range = NVMeDataRange(buffer, offset: offset, count: bytes) else {
            throw .invalidArgument("\(bytes) bytes at offset \(offset) do not fit the \(buffer.count)-byte buffer")
        }
        return range
    }

    /// Checks the namespace exists, the blocks lie in it and `range` holds exactly them.
    func checkRange(_ namespaceID: UInt32, _ lba: UInt64, _ blocks: Int, _ range: NVMeDataRange) throws(NVMeError) {
        let ns = try namespace(namespaceID)
        try checkBlocks(ns, lba, blocks)
        guard range.count == blocks * ns.blockSize else {
            throw .invalidArgument(
                "\(blocks) blocks of namespace \(namespaceID) are \(blocks * ns.blockSize) bytes, but the data range holds \(range.count)")
        }
    }

    /// Checks `blocks` (1…65536, what one command's NLB can say) at `lba` lie in `ns`.
    func checkBlocks(_ ns: IONamespace, _ lba: UInt64, _ blocks: Int) throws(NVMeError) {
        guard blocks >= 1, blocks <= 65536, lba < ns.size, ns.size - lba >= UInt64(blocks) else {
            throw .invalidArgument(
                "\(blocks) blocks at LBA \(lba) are outside namespace \(ns.id) (\(ns.size) blocks of \(ns.blockSize) bytes; 1…65536 blocks per command)"
            )
        }
    }

    /// Hands `command` to the next queue's owner and waits for its outcome.
    func perform(
        _ command: NVMeCommand, _ data: NVMeDataRange?, segments: UnsafeBufferPointer<NVMeDataRange>? = nil,
        mode: NVMeTransferMode = .automatic
    ) async throws(NVMeError) -> UInt32 {
        try checkUsable()
        guard !owners.isEmpty else { throw .invalidArgument("the driver is not brought up: call bringUp() first") }
        let owner = owners[nextQueue.wrappingAdd(1, ordering: .relaxed).oldValue % owners.count]
        return try await owner.perform(command, data, segments: segments, mode: mode).get()
    }

    // MARK: Exclusive queue use

    /// Runs `body` on I/O queue pair `index`'s owner thread (0-based) and returns its result:
    /// the fastest path, for a caller polling one queue from one thread. Nothing else touches
    /// the pair while `body` runs; commands submitted through it complete to `poll`'s closure,
    /// and the caller enforces its own deadlines.
    public func withQueuePair<T>(_ index: Int, _ body: (NVMeQueuePair) throws(NVMeError) -> T) throws(NVMeError) -> T {
        let owner = try queueOwner(index)
        var result: Result<T, NVMeError>?
        owner.reactor.run { result = Result { () throws(NVMeError) in try body(owner.pair) } }
        return try result!.get()
    }

    /// The owner of I/O queue pair `index` (0-based): for a frontend that serves that queue on
    /// its thread (watching its files with the owner's ``QueueReactor``).
    public func queueOwner(_ index: Int) throws(NVMeError) -> NVMeQueueOwner {
        try checkUsable()
        guard owners.indices.contains(index) else {
            throw .invalidArgument("no I/O queue pair \(index): the driver has \(owners.count)")
        }
        return owners[index]
    }

    /// The number of I/O queue pairs created.
    public var queueCount: Int { owners.count }

    // MARK: Timeouts

    /// On an owner thread: aborts `cid` on `queue`, which is past its deadline; has the
    /// controller reset in place when the abort does not take (the command is then resubmitted).
    func abort(queue: Int, commandID cid: UInt16, name: String) {
        let aborted: Bool
        do { aborted = try adminCommand(.abort(queue: queue, commandID: cid)) & 1 == 0 } catch { aborted = false }
        guard !aborted else { return }
        requestRecovery(because: "\(name) timed out and could not be aborted")
    }
}
