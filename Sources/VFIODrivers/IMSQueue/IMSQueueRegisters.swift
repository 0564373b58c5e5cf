import VFIOKit

/// The register map of the simulated IMS queue device, BAR0 (the IMS table at 0x1000 is read
/// by ``DSAInterruptTable`` from GENCAP and TABLE_OFFSET), and its queue context layout.
public enum IMSQueueRegisters: RegisterLayout {
    public static let extent = 0x1000

    public static let version = Register<IMSQueueRegisters, UInt32>(0x00)
    public static let queueCapacity = Register<IMSQueueRegisters, UInt32>(0x18)
    public static let queueCount = Register<IMSQueueRegisters, UInt32>(0x20)
    public static let contexts = Register<IMSQueueRegisters, UInt64>(0x28)
    public static let control = Register<IMSQueueRegisters, UInt32>(0x30)
    public static let doorbellVector = Register<IMSQueueRegisters, UInt32>(0x38)
    /// Write a queue index, or ``reloadAll``, to make the device reread contexts.
    public static let reload = Register<IMSQueueRegisters, UInt32>(0x40)
    public static let reloadAcknowledged = Register<IMSQueueRegisters, UInt32>(0x44)
    /// The status area the device posts summaries into (``IMSStatusLayout``): its first slot
    /// word's IOVA and its slot count.
    public static let postingBase = Register<IMSQueueRegisters, UInt64>(0x48)
    public static let postingSlots = Register<IMSQueueRegisters, UInt32>(0x50)

    public enum Control {
        public static let enable: UInt32 = 1
        public static let contextStore: UInt32 = 2
        public static let postSummaries: UInt32 = 4
    }

    /// Programs the device in `registers` to post summaries for a domain's status area.
    public static func summaryPosting(_ registers: MMIO<IMSQueueRegisters>) -> IMSDomain.SummaryPosting {
        IMSDomain.SummaryPosting { layout throws(IMSError) in
            guard let slots = UInt32(exactly: layout.slots) else { throw .store(IMSQueueError.tooManySlotsToPost(layout.slots)) }
            registers.write(postingBase, layout.base)
            registers.write(postingSlots, slots)
            registers.write(control, registers.read(control) | Control.postSummaries)
            do throws(VFIOError) { try registers.region.checkAccesses() } catch { throw .framework(error) }
        }
    }

    /// The context-reload doorbell of the device in `registers`, for ``QueueContextStore``: each
    /// access is checked, as BAR0 may be trapped.
    public static func reloadDoorbell(_ registers: MMIO<IMSQueueRegisters>) -> QueueContextStore.ReloadDoorbell {
        QueueContextStore.ReloadDoorbell(
            request: { (queue) throws(VFIOError) in
                registers.write(reload, queue.map { UInt32($0) } ?? reloadAll)
                try registers.region.checkAccesses()
            },
            acknowledged: { () throws(VFIOError) in
                let count = registers.read(reloadAcknowledged)
                try registers.region.checkAccesses()
                return count
            })
    }

    public static let reloadAll: UInt32 = 0xffff_ffff
    /// BAR2 holds one 32-bit submission doorbell per queue at 4 × queue.
    public static let doorbellBAR = 2

    /// One queue's 64-byte context in host memory.
    public enum Context {
        public static let size = 64
        public static let ringAddress = 0x00
        public static let ringEntries = 0x08
        public static let tableEntry = 0x0c
        public static let completionAddress = 0x10
        public static let storeLayout = QueueContextStore.Layout(
            stride: size, producer: 0x18, consumer: 0x1c, messageAddress: 0x20, messageData: 0x28, messageControl: 0x2c)
    }

    public static let descriptorSize = 16
    public static let completionSize = 8
}
