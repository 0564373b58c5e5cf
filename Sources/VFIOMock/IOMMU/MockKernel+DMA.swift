import PCI

/// Device DMA: an access by a simulated device, translated the way the machine would.
///
/// - With no IOMMU, and for devices bound to kernel drivers (UIO: the host runs with
///   `iommu=pt`), the address is a mock physical address of process memory.
/// - A vfio device uses its cdev's IOAS or the type1 mappings of the container its group is
///   attached to; until the user attaches one, its DMA is blocked.
/// An access that cannot complete whole is recorded as a ``DMAFault`` and does nothing.
extension MockKernel {
    func deviceDMA(_ address: PCIAddress, iova: UInt64, buffer: UnsafeMutableRawBufferPointer, isWrite: Bool) -> Bool {
        lock.withLock {
            guard let function = functions[address] else { return false }
            func fault(_ at: UInt64, _ reason: DMAFault.Reason) -> Bool {
                let refused = DMAFault(device: address, iova: at, length: buffer.count, isWrite: isWrite, reason: reason)
                faults.append(refused)
                let translated = !configuration.noIOMMU && drivers[address] == .vfioPCI
                if translated && (reason == .unmapped || reason == .permission) { kernelLog.logDMARFault(refused) }
                return false
            }
            guard function.busMasterEnabled else { return fault(iova, .busMasterDisabled) }
            guard buffer.count > 0 else { return true }
            guard iova &+ UInt64(buffer.count - 1) >= iova else { return fault(iova, .unmapped) }
            // Two passes: check every byte first, so a refused access changes nothing, then copy.
            // Neither pass allocates.
            for pass in 0..<2 {
                let copying = pass == 1
                var at = iova
                var done = 0
                while done < buffer.count {
                    let piece: (vaddr: UInt64, length: UInt64, pinned: Bool)
                    switch translate(address, at, isWrite: isWrite) {
                    case .failure(let reason): return fault(at, reason)
                    case .success(let p): piece = p
                    }
                    let n = Int(min(UInt64(buffer.count - done), piece.length))
                    // Pinned pages stay reachable; other memory only while the process maps it.
                    guard piece.pinned || memory.contains(start: piece.vaddr, length: UInt64(n)),
                          let host = UnsafeMutableRawPointer(bitPattern: UInt(piece.vaddr))
                    else { return fault(at, .unmapped) }
                    if copying {
                        if isWrite { host.copyMemory(from: buffer.baseAddress! + done, byteCount: n) }
                        else { (buffer.baseAddress! + done).copyMemory(from: host, byteCount: n) }
                    }
                    at &+= UInt64(n)
                    done += n
                }
            }
            return true
        }
    }

    private enum Translation {
        /// `vaddr` is the host address; `pinned` when it is in pages an IOMMU mapping pinned.
        case success((vaddr: UInt64, length: UInt64, pinned: Bool))
        case failure(DMAFault.Reason)
    }

    /// One step of translation: the host address of `iova` and how many bytes stay contiguous.
    private func translate(_ address: PCIAddress, _ iova: UInt64, isWrite: Bool) -> Translation {
        if configuration.noIOMMU || drivers[address] != .vfioPCI {
            guard let v = memory.virtualAddress(ofPhysical: iova) else { return .failure(.unmapped) }
            return .success((v.vaddr, v.bytesInPage, false))
        }
        guard let device = vfioDevices[address] else { return .failure(.blocked) }
        // A cdev's IOAS, or the type1 domain the whole group joined at VFIO_SET_IOMMU.
        let table: IOMappingTable
        if let ioas = device.attachedIOAS {
            table = ioas.table
        } else if let type1 = device.group.container?.type1 {
            table = type1.table
        } else {
            return .failure(.blocked)
        }
        guard let m = table.lookup(iova) else { return .failure(.unmapped) }
        guard isWrite ? m.writable : m.readable else { return .failure(.permission) }
        if let pinned = m.pinned { return .success((pinned.address(at: iova - m.iova), m.last - iova + 1, true)) }
        return .success((m.vaddr + (iova - m.iova), m.last - iova + 1, false))
    }
}
