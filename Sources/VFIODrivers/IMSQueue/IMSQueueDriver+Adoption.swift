import VFIOKit

/// Hand-over and adoption: the queues keep running on the device, from the same memory at the
/// same IOVA, with the same MSI-X doorbell; only the IMS domain is made again, since its slots'
/// messages name a status area that was this process's.
extension IMSQueueDriver {
    /// Adoptable: it hands over its configuration, queue memory and per-queue counts.
    public static var adoptable: Bool { true }
    /// Payload version 1: queues (UInt32), store (UInt8: 0 table, 1 context), ring entries
    /// (UInt32), the queue memory's IOVA and length (UInt64 each), then per queue its
    /// descriptors submitted and completions consumed (UInt64 each).
    public static var stateVersion: UInt32 { 1 }

    /// Leaves the queues running for a successor: every IMS slot is shut off (a completion
    /// that lands meanwhile is held by the device and sent once a successor unmasks the slot),
    /// the doorbell stays enabled, and the queue memory is handed over. Throws when the driver
    /// is not running, or (then stopped, as by ``stop()``) when its memory cannot be handed over.
    public func handOver(into handOver: inout DeviceHandOver) throws {
        guard let r = running.withLock({ $0.take() }) else { throw IMSQueueError.notStarted }
        r.domain.close()
        let piece: DMAPiece
        do {
            piece = try r.memory.take()!.handOver()
        } catch {
            registers.write(IMSQueueRegisters.control, 0)
            try? device.setBusMaster(false)
            try? device.interrupts.disable(.msix)
            throw error
        }
        let c = r.configuration
        var w = DriverStateRecord.Writer()
        w.append(UInt32(c.queues))
        w.append(UInt8(c.store == .deviceTable ? 0 : 1))
        w.append(UInt32(c.ringEntries))
        w.append(piece.deviceAddress)
        w.append(UInt64(piece.length))
        counts.withLock { counts in
            for q in 0..<c.queues {
                w.append(counts.submitted[q])
                w.append(counts.completions[q])
            }
        }
        handOver.record = DriverStateRecord(driver: Self.name, stateVersion: Self.stateVersion, payload: w.bytes).encoded()
        handOver.pieces.append(piece)
    }

    /// Takes over queues an IMS queue driver handed over: the device must still run that many
    /// queues from the contexts at the memory's IOVA, in the same store mode, with its MSI-X
    /// doorbell enabled, and each context's consumer index must be what the record counted.
    /// Completions that landed while no driver listened are consumed at once.
    public static func adopt(device: PCIDevice, loop: EventLoop, record: DriverStateRecord, pieces: [DMAPiece]) throws -> IMSQueueDriver {
        func stale(_ reason: String) -> DriverRecordError { .stale(driver: name, reason: reason) }
        var r = DriverStateRecord.Reader(record.payload)
        var c = Configuration()
        c.queues = Int(try r.read(UInt32.self))
        let storeCode = try r.read(UInt8.self)
        c.ringEntries = Int(try r.read(UInt32.self))
        let address = try r.read(UInt64.self)
        let length = try r.read(UInt64.self)
        guard storeCode <= 1 else { throw stale("store \(storeCode) is neither the device's table (0) nor the queues' contexts (1)") }
        c.store = storeCode == 0 ? .deviceTable : .queueContext
        guard c.queues >= 1, c.ringEntries >= 1, r.remaining == c.queues * 16 else {
            throw stale("its payload does not hold \(c.queues) queues' counts (\(r.remaining) bytes left)")
        }
        var submitted: [UInt64] = [], completions: [UInt64] = []
        for _ in 0..<c.queues {
            submitted.append(try r.read(UInt64.self))
            completions.append(try r.read(UInt64.self))
        }
        let driver = try IMSQueueDriver(device: device, loop: loop)
        let registers = driver.registers
        let control = registers.read(IMSQueueRegisters.control)
        guard control & IMSQueueRegisters.Control.enable != 0 else { throw stale("the device's queues are disabled") }
        guard (control & IMSQueueRegisters.Control.contextStore != 0) == (c.store == .queueContext) else {
            throw stale("the device does not use the \(c.store.rawValue) store the record names")
        }
        let running = Int(registers.read(IMSQueueRegisters.queueCount))
        guard running == c.queues else { throw stale("the device runs \(running) queues, not \(c.queues)") }
        let contexts = registers.read(IMSQueueRegisters.contexts)
        guard contexts == address else {
            throw stale("the device reads its contexts at 0x\(String(contexts, radix: 16)), not at 0x\(String(address, radix: 16))")
        }
        guard length >= UInt64(memoryBytes(c)) else { throw stale("\(length) bytes of queue memory cannot hold \(c.queues) queues") }
        guard let doorbell = device.interrupts.sources(.msix).first else {
            throw stale("the device has no MSI-X vector enabled for its doorbell")
        }
        guard let piece = pieces.first(where: { $0.deviceAddress == address && UInt64($0.length) == length }) else {
            throw stale("no DMA buffer of \(length) bytes was handed over at the contexts' IOVA 0x\(String(address, radix: 16))")
        }
        try device.dma.adopt(pieces: [piece])
        let memory = try device.dma.claim(piece)
        let base = memory.bytes.baseAddress!
        let consumer = IMSQueueRegisters.Context.storeLayout.consumer
        for q in 0..<c.queues {
            let index = base.load(fromByteOffset: q * IMSQueueRegisters.Context.size + consumer, as: UInt32.self)
            guard index == UInt32(truncatingIfNeeded: completions[q]) else {
                throw stale("queue \(q)'s consumer index is \(index) in memory, but the record counted \(completions[q]) completions")
            }
        }
        driver.configuration = c
        driver.counts.withLock {
            let zeros = [UInt64](repeating: 0, count: c.queues)
            $0 = Counts(completions: completions, deliveries: zeros, submitted: submitted, timeouts: zeros)
        }
        // No slot is armed yet, so nothing else consumes: what landed meanwhile is counted now,
        // and what lands from here on is held until its slot is unmasked.
        for q in 0..<c.queues { driver.completed(queue: q, contexts: UInt(bitPattern: base), delivered: false) }
        try driver.arm(memory, configuration: c, doorbell: doorbell)
        return driver
    }
}
