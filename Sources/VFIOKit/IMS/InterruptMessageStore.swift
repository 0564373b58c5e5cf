/// Where a device keeps its interrupt messages: the driver-supplied half of IMS, after the
/// withdrawn kernel chip contract (`irq_write_msi_msg`, `irq_mask`, `irq_unmask` and the
/// bus lock/unlock pair for stores in queue memory).
///
/// Slots are `0..<capacity`. ``write(_:slot:)``, ``mask(_:)`` and ``unmask(_:)`` may only stage
/// their change; ``commit(timeout:)`` makes every staged change take effect and returns once the
/// device has acknowledged it, or throws ``IMSError/commitTimeout(store:milliseconds:)``, or
/// ``IMSError/commitFailed(store:cause:)`` when a register access of the update (staged or
/// committed) failed. There is no affinity call: moving an interrupt is writing a new message.
///
/// An ``IMSDomain`` calls a store from one thread at a time.
public protocol InterruptMessageStore: AnyObject, Sendable {
    /// How many slots the store holds.
    var capacity: Int { get }
    /// Whether every slot can be masked. A store that cannot is refused.
    var supportsMasking: Bool { get }
    /// Writes `message` into `slot`. The domain masks the slot first.
    func write(_ message: InterruptMessage, slot: Int)
    /// Stops `slot` from sending; an event while masked stays pending in the device.
    func mask(_ slot: Int)
    /// Lets `slot` send again; a pending event is sent then.
    func unmask(_ slot: Int)
    /// Whether the device holds an event for `slot` that it has not sent.
    func pending(_ slot: Int) -> Bool
    /// Shuts `slot` off: its message is cleared and it stays masked.
    func shutdown(_ slot: Int)
    /// Makes staged changes take effect, waiting at most `timeout` for the device's acknowledgement.
    func commit(timeout: Duration) throws(IMSError)
}
