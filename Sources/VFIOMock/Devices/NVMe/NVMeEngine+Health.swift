/// Get Log Page (Error Information 01h, SMART / Health 02h, Changed Namespace List 04h),
/// Asynchronous Event Requests, Asynchronous Event Configuration, and the I/O faults the
/// controller injects.
extension NVMeEngine {
    static let getLogPageOpcode: UInt8 = 0x02
    static let asyncEventRequestOpcode: UInt8 = 0x0c
    static let asyncEventConfigurationFeature: UInt32 = 0x0b
    static let invalidLogPage: UInt16 = 0x109
    static let eventRequestLimitExceeded: UInt16 = 0x105

    // MARK: Asynchronous events

    /// An Asynchronous Event Request: held until there is an event to report.
    mutating func acceptEventRequest(_ commandID: UInt16) {
        guard health.eventRequests.count < NVMeEngineHealth.eventRequestLimit else {
            post(to: 0, from: 0, commandID: commandID, status: Self.eventRequestLimitExceeded, result: 0)
            return
        }
        health.eventRequests.append(commandID)
        deliverEvents()
    }

    /// Queues an event (DW0 layout: type 2:0, information 15:8, log page 23:16) and reports it
    /// if a request is held and no event of its type awaits its log page being read.
    mutating func raiseEvent(type: UInt8, information: UInt8, logPage: UInt8) {
        health.pendingEvents.append(UInt32(type) | UInt32(information) << 8 | UInt32(logPage) << 16)
        deliverEvents()
    }

    private mutating func deliverEvents() {
        guard csts & 1 != 0, !isFatal else { return }
        while !health.eventRequests.isEmpty,
            let index = health.pendingEvents.firstIndex(where: { health.maskedTypes[UInt8($0 & 7)] == nil })
        {
            let event = health.pendingEvents.remove(at: index)
            health.maskedTypes[UInt8(event & 7)] = UInt8((event >> 16) & 0xff)
            post(to: 0, from: 0, commandID: health.eventRequests.removeFirst(), status: NVMeStatusCode.success, result: event)
        }
    }

    /// SMART critical warning `bits` came on: an event for each enabled one.
    mutating func warn(_ bits: UInt8) {
        health.values.criticalWarning |= bits
        for bit in 0..<8 where bits & (1 << bit) != 0 && health.eventConfiguration & (1 << bit) != 0 {
            // Information: 00h reliability, 01h temperature threshold, 02h spare below threshold.
            let information: UInt8 = bit == 0 ? 2 : bit == 1 ? 1 : 0
            raiseEvent(type: 1, information: information, logPage: 0x02)
        }
    }

    /// Namespaces `ids` changed: they join the Changed Namespace List, and a notice is raised
    /// when namespace attribute notices are enabled.
    mutating func namespacesChanged(_ ids: [UInt32]) {
        for id in ids where !health.changedNamespaces.contains(id) { health.changedNamespaces.append(id) }
        if health.eventConfiguration & (1 << 8) != 0 { raiseEvent(type: 2, information: 0, logPage: 0x04) }
    }

    /// Set or Get Features 0Bh.
    mutating func eventConfigurationFeature(set: Bool) -> (UInt16, UInt32) {
        if set { health.eventConfiguration = dword(11) & 0x1ff }
        return (NVMeStatusCode.success, health.eventConfiguration)
    }

    /// Set or Get Features 16h, Host Behavior Support: a 512-byte structure whose byte 0 bit 0
    /// is ACRE, moved by the command's PRPs.
    mutating func hostBehaviorFeature(set: Bool) -> UInt16 {
        let page = scratch
        page.initializeMemory(as: UInt8.self, repeating: 0)
        let data = UnsafeMutableRawBufferPointer(rebasing: page[0..<512])
        guard set else {
            data[0] = health.advancedCommandRetry ? 1 : 0
            return transfer(data, prp1: prp1, prp2: prp2, toHost: true)
        }
        let status = transfer(data, prp1: prp1, prp2: prp2, toHost: false)
        if status == NVMeStatusCode.success { health.advancedCommandRetry = data[0] & 1 != 0 }
        return status
    }

    // MARK: Log pages

    /// Get Log Page: LID in CDW10 7:0, RAE bit 15, NUMD (0's based dwords) in CDW10 31:16 and
    /// CDW11 15:0, the byte offset in CDW13:CDW12. Reading a page with RAE clear unmasks the
    /// event type waiting on it; reading the Changed Namespace List so clears it.
    mutating func getLogPage() -> UInt16 {
        let lid = UInt8(dword(10) & 0xff)
        let retain = dword(10) & (1 << 15) != 0
        let bytes = (Int(dword(10) >> 16) | Int(dword(11) & 0xffff) << 16) * 4 + 4
        let offset = UInt64(dword(13)) << 32 | UInt64(dword(12))
        let page = scratch
        page.initializeMemory(as: UInt8.self, repeating: 0)
        switch lid {
        case 0x01: storeErrorLog(page)
        case 0x02: storeSMARTLog(page)
        case 0x04:
            if health.changedNamespaces.count > 1024 {
                page.storeBytes(of: UInt32.max, as: UInt32.self)
            } else {
                for (i, id) in health.changedNamespaces.enumerated() { page.storeBytes(of: id, toByteOffset: 4 * i, as: UInt32.self) }
            }
        default: return Self.invalidLogPage
        }
        guard offset & 3 == 0, offset < UInt64(page.count), bytes <= page.count - Int(offset) else { return NVMeStatusCode.invalidField }
        let status = transfer(
            UnsafeMutableRawBufferPointer(rebasing: page[Int(offset)..<Int(offset) + bytes]), prp1: prp1, prp2: prp2, toHost: true)
        if status == NVMeStatusCode.success, !retain {
            if lid == 0x04 { health.changedNamespaces.removeAll() }
            for (type, log) in health.maskedTypes where log == lid { health.maskedTypes[type] = nil }
            deliverEvents()
        }
        return status
    }

    private func storeSMARTLog(_ page: UnsafeMutableRawBufferPointer) {
        let v = health.values
        page.storeBytes(of: v.criticalWarning, toByteOffset: 0, as: UInt8.self)
        page.storeBytes(of: v.temperature, toByteOffset: 1, as: UInt16.self)
        page.storeBytes(of: v.availableSpare, toByteOffset: 3, as: UInt8.self)
        page.storeBytes(of: v.availableSpareThreshold, toByteOffset: 4, as: UInt8.self)
        page.storeBytes(of: v.percentageUsed, toByteOffset: 5, as: UInt8.self)
        // Data units are thousands of 512-byte units, rounded up.
        let counters: [(Int, UInt64)] = [
            (32, (health.unitsRead + 999) / 1000), (48, (health.unitsWritten + 999) / 1000), (64, health.hostReads),
            (80, health.hostWrites), (96, v.controllerBusyTime), (112, v.powerCycles), (128, v.powerOnHours),
            (144, v.unsafeShutdowns), (160, v.mediaErrors), (176, health.errorCount),
        ]
        for (offset, value) in counters { page.storeBytes(of: value, toByteOffset: offset, as: UInt64.self) }
        page.storeBytes(of: v.warningTemperatureTime, toByteOffset: 192, as: UInt32.self)
        page.storeBytes(of: v.criticalTemperatureTime, toByteOffset: 196, as: UInt32.self)
        page.storeBytes(of: v.temperature, toByteOffset: 200, as: UInt16.self)
    }

    private func storeErrorLog(_ page: UnsafeMutableRawBufferPointer) {
        for (i, e) in health.errors.enumerated() where (i + 1) * 64 <= page.count {
            let o = i * 64
            page.storeBytes(of: e.count, toByteOffset: o, as: UInt64.self)
            page.storeBytes(of: e.queue, toByteOffset: o + 8, as: UInt16.self)
            page.storeBytes(of: e.commandID, toByteOffset: o + 10, as: UInt16.self)
            page.storeBytes(of: e.status << 1, toByteOffset: o + 12, as: UInt16.self)
            page.storeBytes(of: UInt16.max, toByteOffset: o + 14, as: UInt16.self)  // no parameter location
            page.storeBytes(of: e.lba, toByteOffset: o + 16, as: UInt64.self)
            page.storeBytes(of: e.namespaceID, toByteOffset: o + 24, as: UInt32.self)
        }
    }

    /// Keeps an Error Information entry for a failed command (the one in ``command`` when it
    /// came from an SQ); aborts the host asked for are not errors of the controller.
    mutating func recordError(queue: Int, commandID: UInt16, status: UInt16) {
        guard status & 0x7ff != NVMeStatusCode.abortRequested, status & 0x7ff != NVMeStatusCode.abortedBySQDeletion else { return }
        health.errorCount += 1
        let io = queue != 0 && command.load(fromByteOffset: 2, as: UInt16.self) == commandID
        let lba = io ? UInt64(dword(11)) << 32 | UInt64(dword(10)) : 0
        let entry = NVMeEngineHealth.ErrorEntry(
            count: health.errorCount, queue: UInt16(queue), commandID: commandID, status: status, lba: lba,
            namespaceID: io ? namespaceID : 0)
        health.errors.insert(entry, at: 0)
        if health.errors.count > NVMeEngineHealth.errorLogEntries { health.errors.removeLast() }
    }

    // MARK: I/O accounting and faults

    /// Counts a completed read or write for the SMART counters.
    mutating func countIO(_ opcode: UInt8) {
        guard opcode == IOOpcode.read || opcode == IOOpcode.write, let ns = namespace(namespaceID) else { return }
        let units = UInt64((Int(dword(12) & 0xffff) + 1) * ns.blockSize / 512)
        if opcode == IOOpcode.read {
            health.hostReads += 1
            health.unitsRead += units
        } else {
            health.hostWrites += 1
            health.unitsWritten += units
        }
    }

    /// Moves an injected reset on: the registers come back (at power-on values) once the
    /// unreachable time is over, and a controller the host enabled meanwhile becomes ready once
    /// the reset's time is. Called on each register read and service pass.
    mutating func advanceInjectedReset() {
        guard health.unreachableUntil != nil || health.readyNotBefore != nil else { return }
        let now = ContinuousClock.now
        if let until = health.unreachableUntil, now >= until {
            health.unreachableUntil = nil
            health.removed = false
            powerOn()
        }
        if let notBefore = health.readyNotBefore, now >= notBefore, !health.removed {
            health.readyNotBefore = nil
            if cc & 1 != 0, csts & 1 == 0 {
                enable()
                store32(Offset.csts, csts)
            }
        }
    }

    /// The injected fault for this I/O command, if any: a fatal status, or a failure status.
    mutating func takeFault(_ opcode: UInt8) -> NVMeEngineHealth.Fault? {
        if let after = health.fatalAfter {
            if after == 0 {
                health.fatalAfter = nil
                return .fatal
            }
            health.fatalAfter = after - 1
        }
        let f = health.failures
        guard f.count > 0, f.opcode.map({ $0 == opcode }) ?? true else { return nil }
        health.failures.count -= 1
        if f.status >> 8 & 7 == 2 { health.values.mediaErrors += 1 }
        // CRD (status field bits 12:11) only once the host enabled ACRE.
        let delay = health.advancedCommandRetry ? UInt16(f.retryDelay & 3) << 11 : 0
        return .status(f.status | delay, doNotRetry: f.doNotRetry)
    }
}
