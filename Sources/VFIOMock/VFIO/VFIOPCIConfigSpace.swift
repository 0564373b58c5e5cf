/// vfio-pci's config-space virtualization (`vfio_pci_config.c`), for the registers a
/// userspace driver touches: each byte is virtual (served from `vconfig`) or physical, and
/// writable or not, per the kernel's permission tables.
///
/// - Header: IDs, capability pointer, interrupt pin and line and the BARs are virtual; the
///   command register passes through except INTx-disable, which vfio emulates by masking.
/// - MSI: flags, address and data are virtual; the mask bits pass through to the device.
/// - MSI-X: read from the device, writes dropped (the kernel owns it).
/// - PCIe: device control passes through; its Initiate-FLR bit resets the function.
/// - Advanced Features: read from the device; writing its control's FLR bit resets the function.
/// - Everything else reads from the device and ignores writes.
extension VFIOPCIDevice {
    private struct Permission {
        var virtual: UInt8
        var writable: UInt8
    }

    private func permission(_ offset: Int) -> Permission {
        let layout = function.layout
        switch offset {
        case 0x00..<0x04, PCIConfig.capabilityPointer, PCIConfig.interruptPin: return Permission(virtual: 0xff, writable: 0)
        case PCIConfig.command: return Permission(virtual: UInt8(PCIConfig.commandINTxDisable & 0xff), writable: 0xff)
        case PCIConfig.command + 1: return Permission(virtual: UInt8(PCIConfig.commandINTxDisable >> 8), writable: 0xff)
        case PCIConfig.status: return Permission(virtual: UInt8(PCIConfig.statusCapabilityList), writable: 0)
        case PCIConfig.cacheLineSize, PCIConfig.latencyTimer, 0x0f: return Permission(virtual: 0, writable: 0xff)
        case PCIConfig.bar0..<PCIConfig.bar0 + 24, PCIConfig.romAddress..<PCIConfig.romAddress + 4, PCIConfig.interruptLine:
            return Permission(virtual: 0xff, writable: 0xff)
        default: break
        }
        if let cap = layout.msi, offset >= cap, offset < cap + (layout.msi64 ? 0x18 : 0x14) {
            if offset == cap { return Permission(virtual: 0, writable: 0) }
            if offset >= layout.msiMaskOffset { return Permission(virtual: 0, writable: 0xff) }
            return Permission(virtual: 0xff, writable: offset == cap + 1 ? 0 : 0xff)
        }
        if let cap = layout.pcie, offset == cap + 1 { return Permission(virtual: 0xff, writable: 0) }
        if let cap = layout.pcie, offset == cap + 8 || offset == cap + 9 { return Permission(virtual: 0, writable: 0xff) }
        if let cap = layout.msix, offset == cap + 1 { return Permission(virtual: 0xff, writable: 0) }
        if let cap = layout.advancedFeatures, offset == cap + PCIConfig.afControl {
            return Permission(virtual: 0, writable: PCIConfig.afControlFLR)
        }
        return Permission(virtual: 0, writable: 0)
    }

    /// A config read as the user sees it; BARs report their size mask after sizing.
    func readVirtualConfig(_ offset: Int) -> UInt8 {
        let p = permission(offset)
        let physical = UInt8(function.read(config: offset, width: 1))
        var virtual = vconfig[offset]
        if offset >= PCIConfig.bar0 && offset < PCIConfig.bar0 + 24 { virtual = barByte(offset) }
        return (virtual & p.virtual) | (physical & ~p.virtual)
    }

    /// `vfio_bar_fixup`: the written address masked to the BAR's size, plus its type bits.
    private func barByte(_ offset: Int) -> UInt8 {
        let slot = (offset - PCIConfig.bar0) / 4
        let base = PCIConfig.bar0 + slot * 4
        var value =
            UInt32(vconfig[base]) | UInt32(vconfig[base + 1]) << 8 | UInt32(vconfig[base + 2]) << 16 | UInt32(vconfig[base + 3]) << 24
        if let bar = function.description.bars.first(where: { $0.index == slot }) {
            value = value & ~UInt32(truncatingIfNeeded: bar.size - 1) & ~0xf
            if bar.is64Bit { value |= 0x4 }
            if bar.prefetchable { value |= 0x8 }
        } else if let low = function.description.bars.first(where: { $0.index == slot - 1 && $0.is64Bit }) {
            value &= ~UInt32(truncatingIfNeeded: UInt64(low.size - 1) >> 32)
        } else {
            value = 0
        }
        return UInt8(truncatingIfNeeded: value >> (8 * UInt32(offset - base)))
    }

    /// A config write from the user, one naturally aligned access of `width` bytes. Returns
    /// whether it asked for a function-level reset (PCIe Initiate FLR) and the value that
    /// reached the device, if any did.
    func writeVirtualConfig(_ offset: Int, width: Int, value: UInt32) -> (flr: Bool, physical: UInt32?) {
        var physicalMask: UInt32 = 0
        var physicalValue: UInt32 = 0
        for i in 0..<width {
            let p = permission(offset + i)
            let b = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
            let vw = p.virtual & p.writable
            vconfig[offset + i] = (vconfig[offset + i] & ~vw) | (b & vw)
            let pw = p.writable & ~p.virtual
            physicalMask |= UInt32(pw) << (8 * UInt32(i))
            physicalValue |= UInt32(b & pw) << (8 * UInt32(i))
        }
        var flr = false
        if let cap = function.layout.pcie, offset <= cap + 9, offset + width > cap + 9,
            physicalValue & (0x80 << (8 * UInt32(cap + 9 - offset))) != 0
        {
            flr = true
            physicalValue &= ~(0x80 << (8 * UInt32(cap + 9 - offset)))
        }
        if let at = function.layout.advancedFeatures.map({ $0 + PCIConfig.afControl }), offset <= at, offset + width > at,
            physicalValue & (UInt32(PCIConfig.afControlFLR) << (8 * UInt32(at - offset))) != 0
        {
            flr = true
            physicalValue &= ~(UInt32(PCIConfig.afControlFLR) << (8 * UInt32(at - offset)))
        }
        var physical: UInt32? = nil
        if physicalMask != 0 {
            let current = function.read(config: offset, width: width)
            physical = (current & ~physicalMask) | physicalValue
            function.write(config: offset, width: width, value: physical!)
        }
        if offset <= PCIConfig.command && offset + width > PCIConfig.command {
            // vfio keeps its own copy of memory and I/O decode, which gates BAR access.
            let decode = UInt8(PCIConfig.commandMemory | PCIConfig.commandIO)
            let b = UInt8(truncatingIfNeeded: value >> (8 * UInt32(PCIConfig.command - offset)))
            vconfig[PCIConfig.command] = (vconfig[PCIConfig.command] & ~decode) | (b & decode)
        }
        if offset <= PCIConfig.command + 1 && offset + width > PCIConfig.command { emulateINTxDisable() }
        return (flr, physical)
    }

    private func emulateINTxDisable() {
        let disabled = vconfig[PCIConfig.command + 1] & UInt8(PCIConfig.commandINTxDisable >> 8) != 0
        if disabled && !virqDisabled {
            virqDisabled = true
            maskINTx()
        } else if !disabled && virqDisabled {
            virqDisabled = false
            unmaskINTx()
        }
    }
}
