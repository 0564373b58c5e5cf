/// NVM commands (Flush, Write, Read) and PRP data transfer.
extension NVMeEngine {
    enum IOOpcode {
        static let flush: UInt8 = 0x00, write: UInt8 = 0x01, read: UInt8 = 0x02
    }

    mutating func executeIO(_ opcode: UInt8) -> (status: UInt16, result: UInt32) {
        guard opcode <= IOOpcode.read else { return (NVMeStatusCode.invalidOpcode, 0) }
        guard let ns = namespace(namespaceID) else { return (NVMeStatusCode.invalidNamespace, 0) }
        if opcode == IOOpcode.flush {
            ns.flush()
            return (NVMeStatusCode.success, 0)
        }
        // SLBA in CDW11:CDW10, NLB (0's based) in CDW12 bits 15:0.
        let lba = UInt64(dword(11)) << 32 | UInt64(dword(10))
        let blocks = Int(dword(12) & 0xffff) + 1
        guard lba < ns.blockCount, ns.blockCount - lba >= UInt64(blocks) else { return (NVMeStatusCode.lbaOutOfRange, 0) }
        guard options.maxDataTransfer == 0 || blocks * ns.blockSize <= Self.pageSize << Int(options.maxDataTransfer) else {
            return (NVMeStatusCode.invalidField, 0)
        }
        let status = ns.withBlocks(lba, count: blocks) { data in
            transfer(data, prp1: prp1, prp2: prp2, toHost: opcode == IOOpcode.read)
        }
        return (status, 0)
    }

    /// Moves `data` to (`toHost`) or from the host memory that PRP1 and PRP2 describe: PRP1
    /// with an offset, then whole pages from PRP2, or from the PRP list PRP2 points to when
    /// more than one page remains; a list's last entry chains to the next list page.
    func transfer(_ data: UnsafeMutableRawBufferPointer, prp1: UInt64, prp2: UInt64, toHost: Bool) -> UInt16 {
        let page = Self.pageSize, pageMask = UInt64(page - 1)
        guard let bus else { return NVMeStatusCode.dataTransferError }
        func move(_ iova: UInt64, _ at: Int, _ count: Int) -> Bool {
            let piece = UnsafeMutableRawBufferPointer(rebasing: data[at..<at + count])
            return toHost ? bus.dmaWrite(iova: iova, from: UnsafeRawBufferPointer(piece)) : bus.dmaRead(iova: iova, into: piece)
        }
        guard prp1 & 3 == 0 else { return NVMeStatusCode.invalidPRPOffset }
        var done = min(data.count, page - Int(prp1 & pageMask))
        guard move(prp1, 0, done) else { return NVMeStatusCode.dataTransferError }
        var remaining = data.count - done
        if remaining == 0 { return NVMeStatusCode.success }
        if remaining <= page {
            guard prp2 & pageMask == 0 else { return NVMeStatusCode.invalidPRPOffset }
            return move(prp2, done, remaining) ? NVMeStatusCode.success : NVMeStatusCode.dataTransferError
        }
        var list = prp2
        while remaining > 0 {
            guard list & 7 == 0 else { return NVMeStatusCode.invalidPRPOffset }
            let room = (page - Int(list & pageMask)) / 8
            let needed = (remaining + page - 1) / page
            let chained = needed > room
            let entries = chained ? room : needed
            let listBytes = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<entries * 8])
            guard bus.dmaRead(iova: list, into: listBytes) else { return NVMeStatusCode.dataTransferError }
            for i in 0..<(chained ? entries - 1 : entries) {
                let entry = scratch.load(fromByteOffset: 8 * i, as: UInt64.self)
                guard entry & pageMask == 0 else { return NVMeStatusCode.invalidPRPOffset }
                let n = min(remaining, page)
                guard move(entry, done, n) else { return NVMeStatusCode.dataTransferError }
                done += n
                remaining -= n
            }
            if chained { list = scratch.load(fromByteOffset: 8 * (entries - 1), as: UInt64.self) }
        }
        return NVMeStatusCode.success
    }
}
