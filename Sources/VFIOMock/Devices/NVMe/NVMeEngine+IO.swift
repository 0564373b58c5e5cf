#if canImport(Glibc)
import Glibc
#endif

/// NVM commands (Flush, Write, Read, Compare, Write Zeroes, Dataset Management) and their data
/// transfer, by PRPs or (PSDT 01b, where SGLS offers them) by SGL.
extension NVMeEngine {
    enum IOOpcode {
        static let flush: UInt8 = 0x00, write: UInt8 = 0x01, read: UInt8 = 0x02, compare: UInt8 = 0x05
        static let writeZeroes: UInt8 = 0x08, datasetManagement: UInt8 = 0x09
    }

    /// Whether ONCS offers `opcode`: the base commands always, the optional ones by their bit.
    private func offers(_ opcode: UInt8) -> Bool {
        switch opcode {
        case IOOpcode.flush, IOOpcode.write, IOOpcode.read: true
        case IOOpcode.compare: options.optionalCommands & 1 != 0
        case IOOpcode.datasetManagement: options.optionalCommands & 4 != 0
        case IOOpcode.writeZeroes: options.optionalCommands & 8 != 0
        default: false
        }
    }

    mutating func executeIO(_ opcode: UInt8) -> (status: UInt16, result: UInt32) {
        guard offers(opcode) else { return (NVMeStatusCode.invalidOpcode, 0) }
        guard let ns = namespace(namespaceID) else { return (NVMeStatusCode.invalidNamespace, 0) }
        // No metadata is kept: a namespace formatted with it takes no I/O here.
        guard ns.metadataSize == 0 || opcode == IOOpcode.flush else { return (NVMeStatusCode.invalidField, 0) }
        switch opcode {
        case IOOpcode.flush:
            ns.flush()
            return (NVMeStatusCode.success, 0)
        case IOOpcode.datasetManagement:
            return (datasetManagement(ns), 0)
        default:
            break
        }
        // SLBA in CDW11:CDW10, NLB (0's based) in CDW12 bits 15:0, FUA in bit 30, DEAC in bit 25.
        let lba = UInt64(dword(11)) << 32 | UInt64(dword(10))
        let blocks = Int(dword(12) & 0xffff) + 1
        let fua = dword(12) & (1 << 30) != 0
        guard lba < ns.blockCount, ns.blockCount - lba >= UInt64(blocks) else { return (NVMeStatusCode.lbaOutOfRange, 0) }
        if opcode == IOOpcode.writeZeroes {
            if let wzsl = options.nvmLimits?.writeZeroesSize, wzsl != 0, blocks * ns.blockSize > Self.pageSize << Int(wzsl) {
                return (NVMeStatusCode.invalidField, 0)
            }
            if dword(12) & (1 << 25) != 0, options.deallocateFeatures & 8 != 0 {
                ns.deallocate(lba: lba, count: blocks)
            } else {
                _ = ns.withBlocks(lba, count: blocks) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
            }
            commitIfDue(ns, lba, blocks, fua)
            return (NVMeStatusCode.success, 0)
        }
        guard options.maxDataTransfer == 0 || blocks * ns.blockSize <= Self.pageSize << Int(options.maxDataTransfer) else {
            return (NVMeStatusCode.invalidField, 0)
        }
        if opcode == IOOpcode.compare { return (compare(ns, lba, blocks), 0) }
        let status = ns.withBlocks(lba, count: blocks) { data in
            transferData(data, toHost: opcode == IOOpcode.read)
        }
        if opcode == IOOpcode.write, status == NVMeStatusCode.success { commitIfDue(ns, lba, blocks, fua) }
        return (status, 0)
    }

    /// A write with FUA, or any write on a controller without a volatile cache, is on media
    /// when it completes.
    private func commitIfDue(_ ns: NVMeNamespace, _ lba: UInt64, _ blocks: Int, _ fua: Bool) {
        if fua || !options.volatileWriteCache { ns.commit(lba: lba, count: blocks) }
    }

    /// Compare: the host's data is fetched whole, then held against the blocks.
    private mutating func compare(_ ns: NVMeNamespace, _ lba: UInt64, _ blocks: Int) -> UInt16 {
        let host = hostBuffer(blocks * ns.blockSize)
        let status = transferData(host, toHost: false)
        guard status == NVMeStatusCode.success else { return status }
        let equal = ns.withBlocks(lba, count: blocks) { memcmp($0.baseAddress!, host.baseAddress!, host.count) == 0 }
        return equal ? NVMeStatusCode.success : NVMeStatusCode.compareFailure
    }

    /// Dataset Management: NR (0's based) in CDW10 bits 7:0, attributes in CDW11 (bit 2
    /// Deallocate); every range is checked before any is acted on.
    private mutating func datasetManagement(_ ns: NVMeNamespace) -> UInt16 {
        let ranges = Int(dword(10) & 0xff) + 1
        let list = hostBuffer(16 * ranges)
        let status = transferData(list, toHost: false)
        guard status == NVMeStatusCode.success else { return status }
        for i in 0..<ranges {
            let lba = list.load(fromByteOffset: 16 * i + 8, as: UInt64.self)
            let blocks = UInt64(list.load(fromByteOffset: 16 * i + 4, as: UInt32.self))
            guard lba <= ns.blockCount, ns.blockCount - lba >= blocks else { return NVMeStatusCode.lbaOutOfRange }
        }
        if let limits = options.nvmLimits, !withinLimits(limits, list, ranges) { return NVMeStatusCode.invalidField }
        guard dword(11) & 4 != 0 else { return NVMeStatusCode.success }
        for i in 0..<ranges {
            let blocks = Int(list.load(fromByteOffset: 16 * i + 4, as: UInt32.self))
            if blocks > 0 { ns.deallocate(lba: list.load(fromByteOffset: 16 * i + 8, as: UInt64.self), count: blocks) }
        }
        return NVMeStatusCode.success
    }

    /// Whether a Dataset Management range list keeps to DMRL, DMRSL and DMSL.
    private func withinLimits(_ limits: NVMeController.Options.NVMLimits, _ list: UnsafeMutableRawBufferPointer, _ ranges: Int) -> Bool {
        if limits.ranges != 0, ranges > Int(limits.ranges) { return false }
        var total: UInt64 = 0
        for i in 0..<ranges {
            let blocks = list.load(fromByteOffset: 16 * i + 4, as: UInt32.self)
            if limits.rangeSize != 0, blocks > limits.rangeSize { return false }
            total += UInt64(blocks)
        }
        return limits.size == 0 || total <= limits.size
    }

    /// The first `count` bytes of ``hostData``, grown to hold them.
    private mutating func hostBuffer(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if hostData.count < count {
            hostData.deallocate()
            hostData = .allocate(byteCount: count, alignment: 8)
        }
        return UnsafeMutableRawBufferPointer(rebasing: hostData[0..<count])
    }

    /// Moves an NVM command's data as its PSDT (CDW0 bits 15:14) says: PRPs, or an SGL.
    func transferData(_ data: UnsafeMutableRawBufferPointer, toHost: Bool) -> UInt16 {
        switch command[1] >> 6 {
        case 0: transfer(data, prp1: prp1, prp2: prp2, toHost: toHost)
        case 1 where options.sglSupport & 3 != 0: transferSGL(data, toHost: toHost)
        default: NVMeStatusCode.invalidField
        }
    }

    /// Moves `data` along the SGL whose first descriptor is SGL1 (bytes 24–39): a Data Block,
    /// or a Segment or Last Segment pointing to a list of descriptors; a Segment's last
    /// descriptor may point to the next list. The Data Blocks must describe exactly `data`.
    private func transferSGL(_ data: UnsafeMutableRawBufferPointer, toHost: Bool) -> UInt16 {
        guard let bus else { return NVMeStatusCode.dataTransferError }
        let dwordAligned = options.sglSupport & 3 == 2
        var done = 0
        /// One descriptor: nil when it was a Data Block moved, else the list it points to.
        func take(_ address: UInt64, _ word: UInt64) -> Result<(UInt64, Int, last: Bool)?, SGLError> {
            let length = Int(UInt32(truncatingIfNeeded: word))
            guard (word >> 56) & 0xf == 0 else { return .failure(.status(NVMeStatusCode.sglDescriptorTypeInvalid)) }  // subtype: address
            switch UInt8(word >> 60) {
            case 0x0:
                if dwordAligned, address & 3 != 0 || length & 3 != 0 { return .failure(.status(NVMeStatusCode.dataSGLLengthInvalid)) }
                guard length <= data.count - done else { return .failure(.status(NVMeStatusCode.dataSGLLengthInvalid)) }
                let piece = UnsafeMutableRawBufferPointer(rebasing: data[done..<done + length])
                let ok = toHost ? bus.dmaWrite(iova: address, from: UnsafeRawBufferPointer(piece)) : bus.dmaRead(iova: address, into: piece)
                guard ok else { return .failure(.status(NVMeStatusCode.dataTransferError)) }
                done += length
                return .success(nil)
            case 0x2, 0x3:
                guard length > 0, length % 16 == 0 else { return .failure(.status(NVMeStatusCode.invalidSGLDescriptorCount)) }
                return .success((address, length / 16, word >> 60 == 0x3))
            default:
                return .failure(.status(NVMeStatusCode.sglDescriptorTypeInvalid))
            }
        }
        var next: (UInt64, Int, last: Bool)?
        switch take(prp1, prp2) {
        case let .failure(.status(s)): return s
        case let .success(list): next = list
        }
        while let (list, count, last) = next {
            next = nil
            var index = 0
            while index < count {
                let chunk = min(count - index, Self.pageSize / 16)
                let bytes = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<chunk * 16])
                guard bus.dmaRead(iova: list + UInt64(index * 16), into: bytes) else { return NVMeStatusCode.dataTransferError }
                for i in 0..<chunk {
                    let address = scratch.load(fromByteOffset: 16 * i, as: UInt64.self)
                    let word = scratch.load(fromByteOffset: 16 * i + 8, as: UInt64.self)
                    switch take(address, word) {
                    case let .failure(.status(s)): return s
                    case .success(nil): break
                    case let .success(pointer?):
                        // Only a Segment's last descriptor may point on, to the next list.
                        guard !last, index + i == count - 1 else { return NVMeStatusCode.sglDescriptorTypeInvalid }
                        next = pointer
                    }
                }
                index += chunk
            }
        }
        return done == data.count ? NVMeStatusCode.success : NVMeStatusCode.dataSGLLengthInvalid
    }

    enum SGLError: Error { case status(UInt16) }

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
