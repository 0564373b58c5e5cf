import CVFIO
import SystemPackage
/// read/write/mmap of a vfio-pci device fd, resolved under the kernel lock into what to do:
/// config accesses are served at once; BAR accesses touch shared memory or call the device
/// model after the lock is dropped.
enum RegionAccessPlan {
    /// One naturally aligned access in a trapped BAR; `excluded` is the MSI-X table, which
    /// reads as all ones and ignores writes.
    struct Chunk {
        var offset: Int
        var width: Int
        var excluded: Bool
    }

    case config(count: Int, writes: [(offset: Int, width: Int, value: UInt32)], reset: Bool)
    case memory(UnsafeMutableRawPointer, count: Int, excluded: Range<Int>?, base: Int)
    case trapped(SimulatedDevice, bar: Int, chunks: [Chunk])
}

extension RegionAccessPlan {
    /// The bytes the access transfers.
    var count: Int {
        switch self {
        case .config(let count, _, _), .memory(_, let count, _, _): count
        case .trapped(_, _, let chunks): chunks.reduce(0) { $0 + $1.width }
        }
    }
}

extension VFIOPCIDevice {
    /// Splits [offset, offset+count) into the accesses `vfio_pci_core_do_io_rw` makes:
    /// 8, 4, 2 or 1 bytes, each naturally aligned.
    static func chunks(offset: Int, count: Int, maxWidth: Int = 8) -> [(offset: Int, width: Int)] {
        var out: [(Int, Int)] = []
        var at = offset, left = count
        while left > 0 {
            var w = maxWidth
            while w > 1 && (left < w || at % w != 0) { w /= 2 }
            out.append((at, w))
            at += w
            left -= w
        }
        return out
    }

    func planAccess(offset: Int64, buffer: UnsafeMutableRawBufferPointer, write: Bool) throws(Errno) -> RegionAccessPlan {
        let index = Int(UInt64(bitPattern: offset) >> Self.offsetShift)
        let pos = Int(UInt64(bitPattern: offset) & Self.offsetMask)
        switch index {
        case VFIO_PCI_CONFIG_REGION_INDEX:
            return try configAccess(pos: pos, buffer: buffer, write: write)
        case VFIO_PCI_BAR0_REGION_INDEX...VFIO_PCI_BAR5_REGION_INDEX:
            guard let b = bar(index), pos < b.size else { throw .invalidArgument }
            guard vconfig[PCIConfig.command] & UInt8(PCIConfig.commandMemory) != 0 else { throw .ioError }
            let count = min(buffer.count, b.size - pos)
            var excluded: Range<Int>? = nil
            if let m = function.description.msix, m.tableBAR == index { excluded = m.tableOffset..<m.tableOffset + 16 * m.tableSize }
            if let memory = function.barMemory[index] {
                return .memory(memory.bytes + pos, count: count, excluded: excluded, base: pos)
            }
            let chunks = Self.chunks(offset: pos, count: count).map {
                RegionAccessPlan.Chunk(offset: $0.offset, width: $0.width, excluded: excluded?.contains($0.offset) ?? false)
            }
            return .trapped(function.device, bar: index, chunks: chunks)
        case VFIO_PCI_ROM_REGION_INDEX, VFIO_PCI_VGA_REGION_INDEX:
            throw .invalidArgument
        default:
            throw .invalidArgument
        }
    }

    private func configAccess(pos: Int, buffer: UnsafeMutableRawBufferPointer, write: Bool) throws(Errno) -> RegionAccessPlan {
        var writes: [(offset: Int, width: Int, value: UInt32)] = []
        var reset = false
        var done = 0
        while done < buffer.count {
            let at = pos + done
            guard at < function.layout.size else { throw .badAddress }
            let left = min(buffer.count - done, 4 - at % 4)
            let width = left >= 4 && at % 4 == 0 ? 4 : (left >= 2 && at % 2 == 0 ? 2 : 1)
            if write {
                var value: UInt32 = 0
                for i in 0..<width { value |= UInt32(buffer[done + i]) << (8 * UInt32(i)) }
                let outcome = writeVirtualConfig(at, width: width, value: value)
                if let physical = outcome.physical { writes.append((at, width, physical)) }
                reset = reset || outcome.flr
            } else {
                for i in 0..<width { buffer[done + i] = readVirtualConfig(at + i) }
            }
            done += width
        }
        return .config(count: done, writes: writes, reset: reset)
    }

    /// `vfio_pci_core_mmap`'s checks; returns what to map: a memfd and the offset in it, or a
    /// register BAR's offset for a ``TrappedMapping``.
    func planMap(offset: Int64, length: Int, shared: Bool) throws(Errno) -> MapTarget {
        let index = Int(UInt64(bitPattern: offset) >> Self.offsetShift)
        let pos = Int(UInt64(bitPattern: offset) & Self.offsetMask)
        guard index < VFIO_PCI_NUM_REGIONS, shared, index < VFIO_PCI_ROM_REGION_INDEX, mmapSupported(index),
            let b = bar(index)
        else { throw .invalidArgument }
        let physicalLength = (b.size + 4095) & ~4095
        guard pos + length <= physicalLength else { throw .invalidArgument }
        if configuration.msixTableMapping == .sparseAroundTable, let m = function.description.msix, m.tableBAR == index {
            let allowed = sparseAreas(msix: m, barSize: b.size)
            guard allowed.contains(where: { $0.lowerBound <= pos && pos + length <= $0.upperBound }) else { throw .invalidArgument }
        }
        guard let memory = function.barMemory[index] else { return .registers(function, bar: index, offset: pos, vfio: self) }
        return .memory(fd: memory.fd, offset: Int64(pos))
    }
}
