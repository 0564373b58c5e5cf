/// What can go wrong with an Interrupt Message Store. Each message says what to do.
public enum IMSError: Error, CustomStringConvertible {
    /// The store cannot mask its slots, so the domain refuses it.
    case storeCannotMask(store: String)
    /// Every slot of the domain is allocated.
    case domainFull(capacity: Int)
    /// A message address lies in the interrupt window; nothing was programmed.
    case addressInMSIWindow(UInt64)
    /// The slot handle was freed (or belongs to another domain).
    case staleSlot(index: Int)
    /// The device did not acknowledge a commit in time; the slots it covered are left masked.
    case commitTimeout(store: String, milliseconds: Int)
    /// A register access of a commit failed (a trapped pread or pwrite, see
    /// ``Region/checkAccesses()``); the slots it covered are left masked.
    case commitFailed(store: String, cause: VFIOError)
    /// The framework could not set up the domain (DMA, event loop, eventfd).
    case framework(VFIOError)
    /// The store or its device reported a failure of its own, as the store's own error type.
    case store(any Error)
    /// The domain was closed.
    case closed

    /// What went wrong and what to do about it, in a sentence for a log or a person.
    public var description: String {
        switch self {
        case let .storeCannotMask(store):
            return
                "\(store) cannot mask its slots, and a store without masking is refused: the CPU must always be able to shut off an interrupt; give the store a mask bit"
        case let .domainFull(capacity):
            return "all \(capacity) IMS slots are allocated: free slots you no longer use, or use a store with more slots"
        case let .addressInMSIWindow(address):
            return
                "message address 0x\(String(address, radix: 16)) is in the interrupt window 0xfee00000–0xfeefffff, which only the kernel may target; nothing was programmed: IMS messages must go to a DMA-mapped status area"
        case let .staleSlot(index):
            return "IMS slot \(index) was freed or reallocated: this handle is no longer valid"
        case let .commitTimeout(store, ms):
            return
                "\(store) did not acknowledge the update within \(ms) ms; the affected slots are left masked: check the device is running and its context memory is mapped"
        case let .commitFailed(store, cause):
            return
                "committing \(store) failed, and the affected slots are left masked: \(cause); retry, and if it fails again check the device is still there (`vfiokit info`) and reset it"
        case let .framework(error):
            return error.description
        case let .store(failure):
            return "\(failure)"
        case .closed:
            return "the IMS domain is closed"
        }
    }
}
