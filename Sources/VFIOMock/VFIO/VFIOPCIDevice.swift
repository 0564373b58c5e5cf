import CVFIO
import PCI

/// vfio-pci's state for one function bound to it (`struct vfio_pci_core_device`): who has
/// it open, its virtual config space and its interrupt contexts. Guarded by the kernel lock.
final class VFIOPCIDevice {
    enum IRQType: Equatable { case none, intx, msi, msix }

    /// How the device is open: through its group, or through its cdev bound to an iommufd.
    enum Opener {
        case group
        case cdev(context: IOMMUFDContext, deviceID: UInt32)
    }

    let function: PCIFunction
    unowned let group: MockGroup
    /// The N of `/dev/vfio/devices/vfioN`.
    let index: Int
    let configuration: MockKernel.Configuration

    var openCount = 0
    var opener: Opener?
    /// The IOAS a cdev-opened device is attached to.
    var attachedIOAS: IOAddressSpace?

    var vconfig: [UInt8] = []
    /// `vdev->reset_works`: the reset the PCI core tried when the device was enabled worked.
    private(set) var resetWorks = false
    var savedConfig: [UInt8] = []

    var irqType = IRQType.none
    var intxTrigger: Int32?
    var intxMasked = false
    /// The user set INTx-disable in the virtual command register.
    var virqDisabled = false
    /// MSI/MSI-X vectors the PCI core has allocated (grows with dynamic MSI-X).
    var allocatedVectors = 0
    var vectorTriggers: [Int: Int32] = [:]
    var errTrigger: Int32?
    /// `vdev->pm_runtime_engaged` and its wakeup eventfd (``deviceFeature(_:)``).
    var lowPowerEngaged = false
    var wakeupTrigger: Int32?
    var reqTrigger: Int32?
    /// Removal requests signalled to the user (``MockKernel/requestRemoval(of:)``).
    var removalRequests = 0

    init(function: PCIFunction, group: MockGroup, index: Int, configuration: MockKernel.Configuration) {
        self.function = function
        self.group = group
        self.index = index
        self.configuration = configuration
    }

    var address: PCIAddress { function.address }
    var isOpen: Bool { openCount > 0 }

    /// The MSI-X BAR may grow vectors while enabled (no `VFIO_IRQ_INFO_NORESIZE`).
    var hasDynamicMSIX: Bool { function.description.msix != nil && configuration.dynamicMSIX }

    // MARK: Open and close (vfio_pci_core_enable / vfio_pci_core_disable)

    /// First open: bus mastering off, memory decode on, a function reset if the device has
    /// one, the state saved, INTx-disable cleared, and the virtual config built.
    /// `aloneOnChildBus`: no other function shares the device's bus, and that bus is not a
    /// root bus, so the PCI core can reset it through the bridge above.
    func enable(aloneOnChildBus: Bool) {
        let cmd = function.command & ~PCIConfig.commandBusMaster | PCIConfig.commandMemory
        function.hostSet(config: PCIConfig.command, width: 2, value: UInt32(cmd))
        resetWorks = !resetMethods(aloneOnChildBus: aloneOnChildBus).isEmpty
        if resetWorks { resetPreservingConfig() }
        savedConfig = function.config
        function.hostSet(config: PCIConfig.command, width: 2, value: UInt32(function.command & ~PCIConfig.commandINTxDisable))
        vconfig = function.config
        if function.description.interruptPin == 0 { vconfig[PCIConfig.interruptPin] = 0 }
        virqDisabled = false
        function.router = self
    }

    /// Last close: bus mastering off, interrupts torn down, the device reset and its saved
    /// state restored.
    func disable() {
        exitLowPower()
        function.hostSet(config: PCIConfig.command, width: 2, value: UInt32(function.command & ~PCIConfig.commandBusMaster))
        disableInterrupts()
        closeTrigger(&errTrigger)
        closeTrigger(&reqTrigger)
        if resetWorks {
            function.resetHardware()
            pendingResets.append(function.device)
        }
        for (i, b) in savedConfig.enumerated() { function.hostSet(config: i, width: 1, value: UInt32(b)) }
        virqDisabled = false
    }

    /// The reset methods the PCI core finds for the function, in `pci_reset_fn_methods`'
    /// order: `flr` (PCIe Device Capabilities' FLR bit), `af_flr` (an Advanced Features
    /// capability with TP and FLR), `pm` (a PM capability whose PMCSR has No_Soft_Reset
    /// clear) and `bus` (the function alone on a non-root bus; the mock has no hotplug slots).
    func resetMethods(aloneOnChildBus: Bool) -> [String] {
        let layout = function.layout
        var methods: [String] = []
        if let cap = layout.pcie, function.read(config: cap + 4, width: 4) & PCIConfig.pcieDevCapFLR != 0 { methods.append("flr") }
        if let cap = layout.advancedFeatures {
            let af = UInt8(function.read(config: cap + PCIConfig.afCapabilities, width: 1))
            if af & PCIConfig.afCapTP != 0 && af & PCIConfig.afCapFLR != 0 { methods.append("af_flr") }
        }
        if let cap = layout.powerManagement,
            UInt16(function.read(config: cap + PCIConfig.pmControl, width: 2)) & PCIConfig.pmControlNoSoftReset == 0
        {
            methods.append("pm")
        }
        if aloneOnChildBus { methods.append("bus") }
        return methods
    }

    /// Device models whose `reset()` must run once the kernel lock is dropped.
    var pendingResets: [SimulatedDevice] = []

    /// `pci_try_reset_function`: the config space and MSI-X table survive (saved and
    /// restored around the reset), the device's own state does not.
    func resetPreservingConfig() {
        let config = function.config
        var table: [(UInt64, UInt32, Bool)] = []
        for v in 0..<(function.description.msix?.tableSize ?? 0) {
            let e = function.msixEntry(v)!
            table.append(
                (
                    e.loadUnaligned(as: UInt64.self), e.loadUnaligned(fromByteOffset: 8, as: UInt32.self),
                    function.msixVectorMasked(v)
                ))
        }
        function.resetHardware()
        pendingResets.append(function.device)
        for (i, b) in config.enumerated() { function.hostSet(config: i, width: 1, value: UInt32(b)) }
        for (v, e) in table.enumerated() { function.programMSIX(vector: v, address: e.0, data: e.1, masked: e.2) }
    }

    func closeTrigger(_ fd: inout Int32?) {
        if let f = fd { _ = closeHostFD(f) }
        fd = nil
    }

    // MARK: Interrupt counts (vfio_pci_get_irq_count)

    func irqCount(_ index: UInt32) -> Int {
        switch Int(index) {
        case VFIO_PCI_INTX_IRQ_INDEX: return vconfig.count > PCIConfig.interruptPin && vconfig[PCIConfig.interruptPin] != 0 ? 1 : 0
        case VFIO_PCI_MSI_IRQ_INDEX: return function.description.msi?.vectors ?? 0
        case VFIO_PCI_MSIX_IRQ_INDEX: return function.description.msix?.tableSize ?? 0
        case VFIO_PCI_ERR_IRQ_INDEX: return function.description.isPCIExpress ? 1 : 0
        case VFIO_PCI_REQ_IRQ_INDEX: return 1
        default: return 0
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Closes a descriptor the mock owns on the host (an eventfd reference).
@discardableResult
func closeHostFD(_ fd: Int32) -> Int32 { Glibc.close(fd) }

extension VFIOPCIDevice {
    /// Releases every eventfd reference the device holds (the kernel going away).
    func closeAllTriggers() {
        for fd in vectorTriggers.values { closeHostFD(fd) }
        vectorTriggers.removeAll()
        closeTrigger(&intxTrigger)
        closeTrigger(&errTrigger)
        closeTrigger(&reqTrigger)
        closeTrigger(&wakeupTrigger)
    }
}
