/// The data pointer of a command: PRPs or an SGL, built in the slot's own list pages (each slot
/// has ``listPages`` pages, allocated with the queue), so a request allocates nothing.
///
/// PRPs (NVMe base specification, "Physical Region Page Entry and List"): PRP1 is the first
/// byte (dword aligned); every later entry is a whole page, so every segment but the first
/// starts on a page boundary and every segment but the last ends on one. PRP2 is the second
/// page, or a list of every page after the first, whose last entry chains to the next list page
/// when it is full. An SGL (PSDT 01b) is one Data Block descriptor in SGL1, or a Last Segment
/// descriptor there pointing to a Data Block descriptor per segment.
extension NVMeQueuePair {
    /// Why `segments` cannot go as `mode` on this queue, or nil when they can; `.automatic`
    /// resolved to what they will go as.
    @inline(__always)
    func check(_ segments: UnsafeBufferPointer<NVMeDataRange>, _ mode: inout NVMeTransferMode) -> String? {
        guard !segments.isEmpty else { return "a transfer needs at least one segment" }
        var total = 0
        for s in segments {
            guard s.count > 0 else { return "a segment of 0 bytes at device address \(hex(s.deviceAddress)) is not a transfer" }
            total += s.count
        }
        guard total <= maxTransfer else {
            return "a transfer of \(total) bytes is larger than \(maxTransfer), the most one command carries (the controller's MDTS)"
        }
        let prpProblem = mode == .sgl ? nil : prpProblem(segments)
        switch mode {
        case .prp: return prpProblem
        case .sgl: return sglProblem(segments)
        case .automatic:
            guard let prpProblem else { mode = .prp; return nil }
            if let sglProblem = sglProblem(segments) { return "\(prpProblem); \(sglProblem)" }
            mode = .sgl
            return nil
        }
    }

    @inline(__always)
    private func prpProblem(_ segments: UnsafeBufferPointer<NVMeDataRange>) -> String? {
        let mask = UInt64(Self.pageSize - 1)
        guard segments[0].deviceAddress & 3 == 0 else {
            return "data at device address \(hex(segments[0].deviceAddress)) is not 4-byte aligned, as NVMe's PRP1 must be"
        }
        for i in segments.indices {
            let s = segments[i]
            if i > 0, s.deviceAddress & mask != 0 {
                return
                    "segment \(i) starts at device address \(hex(s.deviceAddress)), inside a page: a PRP entry after the first must be page-aligned"
            }
            if i < segments.count - 1, (s.deviceAddress &+ UInt64(s.count)) & mask != 0 {
                return
                    "segment \(i) ends at device address \(hex(s.deviceAddress &+ UInt64(s.count))), inside a page, and another follows: PRPs need every segment but the last to end on a page boundary"
            }
        }
        return nil
    }

    @inline(__always)
    private func sglProblem(_ segments: UnsafeBufferPointer<NVMeDataRange>) -> String? {
        guard sgl != .unsupported else { return "the controller does not take SGLs (Identify Controller SGLS bits 1:0 are 0)" }
        let room = listPages * Self.pageSize / 16
        guard segments.count == 1 || segments.count <= room else {
            return "\(segments.count) segments are more than the \(room) SGL descriptors a command's list holds"
        }
        if sgl == .dwordAligned {
            for s in segments where s.deviceAddress & 3 != 0 || s.count & 3 != 0 {
                return
                    "the controller's SGLs need dword-aligned Data Blocks (SGLS bits 1:0 = 10b): \(s.count) bytes at \(hex(s.deviceAddress)) are not"
            }
        }
        return nil
    }

    /// Fills `command`'s data pointer for checked `segments`, using slot `slot`'s list pages.
    @inline(__always)
    func setDataPointer(_ command: inout NVMeCommand, _ segments: UnsafeBufferPointer<NVMeDataRange>, _ mode: NVMeTransferMode, slot: Int) {
        if mode == .sgl { setSGL(&command, segments, slot: slot) } else { setPRPs(&command, segments, slot: slot) }
    }

    @inline(__always)
    private func setPRPs(_ command: inout NVMeCommand, _ segments: UnsafeBufferPointer<NVMeDataRange>, slot: Int) {
        let page = UInt64(Self.pageSize), mask = page - 1
        let first = segments[0]
        command.prp1 = first.deviceAddress
        // Entries after PRP1: the rest of the first segment's pages, then every page of the others.
        var entries = Int(((first.deviceAddress & mask) + UInt64(first.count) + mask) / page) - 1
        for s in segments.dropFirst() { entries += (s.count + Self.pageSize - 1) / Self.pageSize }
        if entries == 0 { return }
        if entries == 1 {
            command.prp2 = segments.count == 1 ? (first.deviceAddress & ~mask) + page : segments[1].deviceAddress
            return
        }
        let base = slot * listPages * Self.pageSize
        command.prp2 = prpLists.deviceAddress + UInt64(base)
        let list = prpLists.bytes.baseAddress! + base
        var written = 0, position = 0
        @inline(__always) func append(_ address: UInt64) {
            // The last slot of a list page chains to the next page when more than one entry remains.
            if position % 512 == 511, entries - written > 1 {
                list.storeBytes(of: prpLists.deviceAddress + UInt64(base + (position + 1) * 8), toByteOffset: position * 8, as: UInt64.self)
                position += 1
            }
            list.storeBytes(of: address, toByteOffset: position * 8, as: UInt64.self)
            position += 1
            written += 1
        }
        var address = (first.deviceAddress & ~mask) + page
        let firstEnd = first.deviceAddress + UInt64(first.count)
        while address < firstEnd { append(address); address += page }
        for s in segments.dropFirst() {
            var a = s.deviceAddress
            let end = a + UInt64(s.count)
            while a < end { append(a); a += page }
        }
    }

    @inline(__always)
    private func setSGL(_ command: inout NVMeCommand, _ segments: UnsafeBufferPointer<NVMeDataRange>, slot: Int) {
        command.dataPointerType = NVMeCommand.sglData
        if segments.count == 1 {
            command.prp1 = segments[0].deviceAddress
            command.prp2 = Self.sglDescriptorWord(count: segments[0].count, type: NVMeCommand.sglDataBlock)
            return
        }
        let base = slot * listPages * Self.pageSize
        let list = prpLists.bytes.baseAddress! + base
        for (i, s) in segments.enumerated() {
            list.storeBytes(of: s.deviceAddress, toByteOffset: 16 * i, as: UInt64.self)
            list.storeBytes(
                of: Self.sglDescriptorWord(count: s.count, type: NVMeCommand.sglDataBlock), toByteOffset: 16 * i + 8, as: UInt64.self)
        }
        command.prp1 = prpLists.deviceAddress + UInt64(base)
        command.prp2 = Self.sglDescriptorWord(count: 16 * segments.count, type: NVMeCommand.sglLastSegment)
    }

    /// Bytes 15:8 of an SGL descriptor: the length in bytes 11:8, the identifier in byte 15.
    @inline(__always)
    static func sglDescriptorWord(count: Int, type: UInt8) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: count)) | UInt64(type) << 60
    }
}

@inline(__always)
func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
