import PCI

/// The mock's interrupt-remapping unit: a memory write by a device to the MSI window
/// 0xfee00000–0xfeefffff is an interrupt message, which the unit resolves by its data to the
/// vfio vector that owns it and signals that vector's eventfd. Any other address is an
/// ordinary DMA write of the 32-bit data. This is how a device with its own message store
/// (IMS) delivers interrupts on the mock.
extension MockKernel {
    static let msiWindow: ClosedRange<UInt64> = 0xfee0_0000...0xfeef_ffff

    /// The message the host programmed for an enabled vector of a vfio-pci device.
    public func interruptMessage(of address: PCIAddress, msix: Bool, vector: Int) -> (address: UInt64, data: UInt32)? {
        lock.withLock {
            guard let d = vfioDevices[address], d.irqType == (msix ? .msix : .msi), d.vectorTriggers[vector] != nil else { return nil }
            return (0xfee0_0000, d.messageData(msix: msix, vector: vector))
        }
    }

    /// A message write by the device at `sender`. Returns false if it was dropped (bus
    /// mastering off, no vector owns the message) or, for a DMA write, refused.
    func deliverMessage(from sender: PCIAddress, address: UInt64, data: UInt32) -> Bool {
        guard Self.msiWindow.contains(address) else {
            var value = data
            return withUnsafeMutableBytes(of: &value) { deviceDMA(sender, iova: address, buffer: $0, isWrite: true) }
        }
        return lock.withLock {
            guard let f = functions[sender], f.busMasterEnabled else { return false }
            let msix = data & 0x8000 != 0
            let vector = Int(data & 0x7fff)
            guard let target = vfioDevices.values.first(where: { UInt32($0.index) == data >> 16 }),
                target.irqType == (msix ? .msix : .msi), let fd = target.vectorTriggers[vector]
            else {
                f.droppedMessages += 1
                return false
            }
            signalEventFD(fd)
            return true
        }
    }
}
