import SystemPackage
import CVFIO

/// vfio-pci's interrupt handling (`vfio_pci_intrs.c`): INTx with automask, MSI and MSI-X
/// eventfds, ERR and REQ triggers, and `VFIO_DEVICE_SET_IRQS`.
extension VFIOPCIDevice: InterruptRouter {
    /// `vfio_intx_handler` (PCI 2.3 masking): masks the line and signals the trigger once.
    func intxFired(_ function: PCIFunction) {
        guard irqType == .intx, !intxMasked else { return }
        intxMasked = true
        function.hostSet(config: PCIConfig.command, width: 2, value: UInt32(function.command | PCIConfig.commandINTxDisable))
        sendINTx()
    }

    func messageTarget(msix: Bool, vector: Int) -> Int32? {
        guard irqType == (msix ? .msix : .msi) else { return nil }
        return vectorTriggers[vector]
    }

    private func sendINTx() {
        if irqType == .intx, !virqDisabled, let fd = intxTrigger { signalEventFD(fd) }
    }

    func maskINTx() {
        guard irqType == .intx else {
            setINTxDisable(true)
            return
        }
        if !intxMasked {
            setINTxDisable(true)
            intxMasked = true
        }
    }

    /// `vfio_pci_intx_unmask_handler`: if the line is still asserted it stays masked and the
    /// trigger fires again, else the line is unmasked.
    func unmaskINTx() {
        guard irqType == .intx else {
            setINTxDisable(false)
            return
        }
        guard intxMasked, !virqDisabled else { return }
        if function.intxAsserted {
            sendINTx()
        } else {
            intxMasked = false
            setINTxDisable(false)
        }
    }

    private func setINTxDisable(_ on: Bool) {
        let c = function.command
        function.hostSet(
            config: PCIConfig.command, width: 2,
            value: UInt32(on ? c | PCIConfig.commandINTxDisable : c & ~PCIConfig.commandINTxDisable))
    }

    func disableInterrupts() {
        switch irqType {
        case .intx: disableINTx()
        case .msi: disableMSI(msix: false)
        case .msix: disableMSI(msix: true)
        case .none: break
        }
    }

    private func disableINTx() {
        closeTrigger(&intxTrigger)
        irqType = .none
        setINTxDisable(true)
        intxMasked = false
    }

    // MARK: MSI and MSI-X

    /// `vfio_msi_enable`: the PCI core allocates `count` vectors and enables the capability.
    private func enableMSI(count: Int, msix: Bool) throws(Errno) {
        guard irqType == .none else { throw .invalidArgument }
        guard count >= 1 else { throw .outOfRange }
        allocatedVectors = count
        // The PCI core turns INTx off while MSI or MSI-X is on (pci_intx_for_msi).
        setINTxDisable(true)
        if msix {
            let cap = function.layout.msix!
            let flags = UInt16(function.read(config: cap + 2, width: 2)) | PCIConfig.msixFlagsEnable
            function.hostSet(config: cap + 2, width: 2, value: UInt32(flags & ~PCIConfig.msixFlagsMaskAll))
            irqType = .msix
        } else {
            let cap = function.layout.msi!
            let log2 = UInt16(64 - UInt64(count - 1).leadingZeroBitCount)
            var flags = UInt16(function.read(config: cap + 2, width: 2)) & ~0x70
            flags |= (count == 1 ? 0 : log2) << 4 | PCIConfig.msiFlagsEnable
            function.hostSet(config: cap + 2, width: 2, value: UInt32(flags))
            function.hostSet(config: cap + 4, width: 4, value: 0xfee0_0000)
            function.hostSet(config: function.layout.msiDataOffset, width: 2, value: messageData(msix: false, vector: 0))
            irqType = .msi
        }
    }

    private func disableMSI(msix: Bool) {
        for v in vectorTriggers.keys.sorted() { try? setVector(v, fd: -1, msix: msix) }
        if msix, let cap = function.layout.msix {
            let flags = UInt16(function.read(config: cap + 2, width: 2)) & ~PCIConfig.msixFlagsEnable
            function.hostSet(config: cap + 2, width: 2, value: UInt32(flags))
        } else if let cap = function.layout.msi {
            let flags = UInt16(function.read(config: cap + 2, width: 2)) & ~(PCIConfig.msiFlagsEnable | 0x70)
            function.hostSet(config: cap + 2, width: 2, value: UInt32(flags))
        }
        allocatedVectors = 0
        irqType = .none
        setINTxDisable(false)
    }

    /// `vfio_msi_set_vector_signal`: releases the vector's old eventfd, then (for fd >= 0)
    /// allocates the vector if needed (dynamic MSI-X only), takes a reference on the
    /// eventfd and unmasks the vector.
    private func setVector(_ vector: Int, fd: Int32, msix: Bool) throws(Errno) {
        var hadContext = false
        if let old = vectorTriggers.removeValue(forKey: vector) {
            closeHostFD(old)
            maskVector(vector, msix: msix, masked: true)
            hadContext = true
        }
        guard fd >= 0 else { return }
        if !hadContext && vector >= allocatedVectors {
            guard msix && hasDynamicMSIX else { throw .invalidArgument }
            allocatedVectors = vector + 1
        }
        let reference = try eventFDReference(fd)
        vectorTriggers[vector] = reference
        maskVector(vector, msix: msix, masked: false)
    }

    /// The message the host programs for a vector, in the mock's remappable format: the
    /// interrupt-remapping unit (``MockKernel/deliverMessage(from:address:data:)``) decodes
    /// the device index, the kind and the vector from the data.
    func messageData(msix: Bool, vector: Int) -> UInt32 {
        UInt32(index) << 16 | (msix ? 0x8000 : 0) | UInt32(vector)
    }

    private func maskVector(_ vector: Int, msix: Bool, masked: Bool) {
        if msix {
            function.programMSIX(vector: vector, address: 0xfee0_0000, data: messageData(msix: true, vector: vector), masked: masked)
        } else if let msi = function.description.msi, msi.perVectorMasking {
            let mask = function.read(config: function.layout.msiMaskOffset, width: 4)
            let bit = UInt32(1) << UInt32(vector)
            function.write(config: function.layout.msiMaskOffset, width: 4, value: masked ? mask | bit : mask & ~bit)
        }
    }

    private func setMSIBlock(start: Int, count: Int, request: SetIRQsRequest?, msix: Bool) throws(Errno) {
        var done = start
        do {
            for i in 0..<count {
                try setVector(start + i, fd: request.map { $0.fd(i) } ?? -1, msix: msix)
                done += 1
            }
        } catch {
            for v in start..<done { try? setVector(v, fd: -1, msix: msix) }
            throw error
        }
    }

    private func msiTrigger(_ r: SetIRQsRequest, msix: Bool) throws(Errno) {
        let type: IRQType = msix ? .msix : .msi
        if irqType == type && r.count == 0 && r.dataType == UInt32(VFIO_IRQ_SET_DATA_NONE) {
            disableMSI(msix: msix)
            return
        }
        guard irqType == type || irqType == .none else { throw .invalidArgument }
        if r.dataType == UInt32(VFIO_IRQ_SET_DATA_EVENTFD) {
            if irqType == type {
                try setMSIBlock(start: Int(r.start), count: Int(r.count), request: r, msix: msix)
            } else {
                try enableMSI(count: Int(r.start + r.count), msix: msix)
                do {
                    try setMSIBlock(start: Int(r.start), count: Int(r.count), request: r, msix: msix)
                } catch {
                    disableMSI(msix: msix)
                    throw error
                }
            }
            if msix { function.deliverPendingMSIX() }
            return
        }
        guard irqType == type else { throw .invalidArgument }
        for i in 0..<Int(r.count) {
            guard let fd = vectorTriggers[Int(r.start) + i] else { continue }
            if r.dataType == UInt32(VFIO_IRQ_SET_DATA_NONE) || r.bool(i) { signalEventFD(fd) }
        }
    }

    // MARK: INTx

    private func intxTriggerAction(_ r: SetIRQsRequest) throws(Errno) {
        if irqType == .intx && r.count == 0 && r.dataType == UInt32(VFIO_IRQ_SET_DATA_NONE) {
            disableINTx()
            return
        }
        guard irqType == .intx || irqType == .none, r.start == 0, r.count == 1 else { throw .invalidArgument }
        if r.dataType == UInt32(VFIO_IRQ_SET_DATA_EVENTFD) {
            let fd = r.fd(0)
            let reference: Int32? = fd >= 0 ? try eventFDReference(fd) : nil
            if irqType == .intx {
                if let old = intxTrigger { closeHostFD(old) }
                intxTrigger = reference
            } else {
                intxTrigger = reference
                intxMasked = virqDisabled
                irqType = .intx
                setINTxDisable(intxMasked)
            }
            return
        }
        guard irqType == .intx else { throw .invalidArgument }
        if r.dataType == UInt32(VFIO_IRQ_SET_DATA_NONE) || r.bool(0) { sendINTx() }
    }

    private func intxMaskAction(_ r: SetIRQsRequest, unmask: Bool) throws(Errno) {
        guard irqType == .intx, r.start == 0, r.count == 1 else { throw .invalidArgument }
        switch r.dataType {
        case UInt32(VFIO_IRQ_SET_DATA_EVENTFD):
            // Masking by eventfd is unimplemented in the kernel too (ENOTTY). An unmask
            // eventfd (virqfd, how KVM wires INTx) is not modelled; -1 removes none.
            guard unmask, r.fd(0) < 0 else { throw .inappropriateIOCTLForDevice }
        case UInt32(VFIO_IRQ_SET_DATA_BOOL) where !r.bool(0): return
        default: if unmask { unmaskINTx() } else { maskINTx() }
        }
    }

    // MARK: ERR and REQ

    private func singleTrigger(_ r: SetIRQsRequest, _ trigger: inout Int32?) throws(Errno) {
        guard r.start == 0, r.count <= 1 else { throw .invalidArgument }
        switch r.dataType {
        case UInt32(VFIO_IRQ_SET_DATA_NONE):
            guard let fd = trigger else { throw .invalidArgument }
            if r.count == 1 { signalEventFD(fd) } else { closeTrigger(&trigger) }
        case UInt32(VFIO_IRQ_SET_DATA_BOOL):
            guard r.count == 1 else { throw .invalidArgument }
            if r.bool(0), let fd = trigger { signalEventFD(fd) }
        default:
            guard r.count == 1 else { throw .invalidArgument }
            let fd = r.fd(0)
            if fd == -1 {
                closeTrigger(&trigger)
            } else if fd >= 0 {
                let reference = try eventFDReference(fd)
                closeTrigger(&trigger)
                trigger = reference
            } else {
                throw .invalidArgument
            }
        }
    }

    /// `VFIO_DEVICE_SET_IRQS`: validation, then `vfio_pci_set_irqs_ioctl`'s dispatch, which
    /// answers `ENOTTY` for an action an index does not take (including two actions at once).
    func setIRQs(_ arg: UserPointer) throws(Errno) {
        let r = try SetIRQsRequest(arg, irqCount: irqCount, indexCount: UInt32(VFIO_PCI_NUM_IRQS))
        let mask = UInt32(VFIO_IRQ_SET_ACTION_MASK), unmask = UInt32(VFIO_IRQ_SET_ACTION_UNMASK)
        let trigger = UInt32(VFIO_IRQ_SET_ACTION_TRIGGER)
        switch (Int(r.index), r.action) {
        case (VFIO_PCI_INTX_IRQ_INDEX, mask): try intxMaskAction(r, unmask: false)
        case (VFIO_PCI_INTX_IRQ_INDEX, unmask): try intxMaskAction(r, unmask: true)
        case (VFIO_PCI_INTX_IRQ_INDEX, trigger): try intxTriggerAction(r)
        case (VFIO_PCI_MSI_IRQ_INDEX, trigger): try msiTrigger(r, msix: false)
        case (VFIO_PCI_MSIX_IRQ_INDEX, trigger): try msiTrigger(r, msix: true)
        case (VFIO_PCI_ERR_IRQ_INDEX, trigger) where function.description.isPCIExpress: try singleTrigger(r, &errTrigger)
        case (VFIO_PCI_REQ_IRQ_INDEX, trigger): try singleTrigger(r, &reqTrigger)
        default: throw .inappropriateIOCTLForDevice
        }
    }
}
