import PCI
import Synchronization
import SystemPackage

/// One interrupt vector as a file the event loop waits on: an eventfd the kernel signals
/// (VFIO), or UIO's `/dev/uioN`. ``count(read:)`` turns what a read returns into how many
/// times it fired since the last read.
///
/// Ownership: the source owns its eventfd and is the only one that closes it. It closes it
/// once its index is disabled (the kernel no longer signals it) and no event loop has it
/// registered, never before the last `EPOLL_CTL_DEL`. UIO's file belongs to the backend and is
/// never closed here. Thread-safe.
public final class InterruptSource: Sendable, CustomStringConvertible {
    /// The device the vector belongs to.
    public let address: PCIAddress
    /// The interrupt index the vector belongs to.
    public let index: IRQIndex
    /// The vector's number within its index (0 for INTx).
    public let vector: Int
    /// The file descriptor, valid while the source is enabled or registered; read it, never close it.
    public let fd: FileDescriptor
    /// Bytes a read returns: 8 for an eventfd, 4 for UIO's counter.
    let width: Int
    /// Closes the eventfd; nil when the file belongs to the backend (UIO).
    private let system: (any SystemCalls)?
    /// UIO's counter is the device's running total; this is the total the last read returned.
    private let lastTotal: Atomic<UInt32>
    private let state = Mutex(State())

    private struct State {
        var phase = Phase.enabled
        /// The loops that have this source registered, with each registration's token.
        var registrations: [(loop: EventLoop, token: UInt64)] = []
    }

    private enum Phase {
        /// Wired to the kernel; registrations are accepted.
        case enabled
        /// Being disabled: no new registrations; the kernel may still signal it.
        case disabling
        /// The kernel has let go of it; the file is closed once the last registration ends.
        case disabled
        case closed
    }

    /// A VFIO vector's eventfd, owned by the source from now on.
    init(eventfd fd: FileDescriptor, address: PCIAddress, index: IRQIndex, vector: Int, system: any SystemCalls) {
        self.address = address
        self.index = index
        self.vector = vector
        self.fd = fd
        self.system = system
        width = 8
        lastTotal = Atomic(0)
    }

    /// UIO's INTx file, which stays the backend's; `total` is UIO's running total now.
    init(uio fd: FileDescriptor, address: PCIAddress, total: UInt32) {
        self.address = address
        index = .intx
        vector = 0
        self.fd = fd
        system = nil
        width = 4
        lastTotal = Atomic(total)
    }

    /// The fires a read of `width` bytes stands for: an eventfd's count, which the read reset,
    /// or how far UIO's running total moved since the last read.
    @inline(__always)
    func count(read counter: UnsafeRawBufferPointer) -> UInt64 {
        guard width == 4 else { return counter.load(as: UInt64.self) }
        let total = counter.load(as: UInt32.self)
        return UInt64(total &- lastTotal.exchange(total, ordering: .relaxed))
    }

    /// `MSI-X vector 3 of 0000:01:00.0`.
    public var description: String { "\(index) vector \(vector) of \(address)" }

    // MARK: Registrations (the event loop's side)

    /// Records a registration on `loop`, running `add` (the `EPOLL_CTL_ADD`) while no disable
    /// can slip in between. Throws ``VFIOError/interruptSourceRetired(_:_:vector:)`` once disabling began.
    func attach(to loop: EventLoop, token: UInt64, add: (FileDescriptor) throws(VFIOError) -> Void) throws(VFIOError) {
        try state.withLock { (s) throws(VFIOError) in
            guard case .enabled = s.phase else { throw .interruptSourceRetired(address, index, vector: vector) }
            try add(fd)
            s.registrations.append((loop, token))
        }
    }

    /// Forgets a registration after its `EPOLL_CTL_DEL`; closes the file if it was the last one
    /// and the index is disabled.
    func detach(from loop: EventLoop, token: UInt64) {
        state.withLock { s in
            s.registrations.removeAll { $0.loop === loop && $0.token == token }
            closeIfUnused(&s)
        }
    }

    // MARK: Enabling and disabling (the ``Interrupts`` side)

    /// Refuses new registrations and ends every registration, each waiting for its running
    /// handler as ``EventLoop/Registration/end()`` does.
    func endRegistrations() {
        let registrations = state.withLock { s in
            if case .enabled = s.phase { s.phase = .disabling }
            return s.registrations
        }
        for r in registrations { r.loop.end(r.token) }
    }

    /// Called once the kernel no longer signals the file: closes it if no loop has it registered.
    func unwired() {
        state.withLock { s in
            if case .disabling = s.phase { s.phase = .disabled }
            closeIfUnused(&s)
        }
    }

    /// Accepts registrations again: UIO's INTx file, enabled anew. Only a backend's file can be.
    func rearm() {
        precondition(system == nil, "an eventfd source is never enabled again; enable makes new ones")
        state.withLock { $0.phase = .enabled }
    }

    private func closeIfUnused(_ s: inout State) {
        guard case .disabled = s.phase, s.registrations.isEmpty, let system else { return }
        s.phase = .closed
        // Cannot fail here: an eventfd has nothing to flush, and Linux releases the descriptor
        // even when close reports an error.
        try? system.close(fd)
    }
}
