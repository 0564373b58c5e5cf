#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Logging
import PCI
import Synchronization
import SystemPackage

/// A device's interrupts: which kinds it has, and their vectors as ``InterruptSource``s.
///
/// Only one of INTx, MSI and MSI-X is enabled at a time, as in the kernel; enabling another
/// while one is on is refused with ``VFIOError/interruptKindInUse(_:requested:enabled:)``.
///
/// Thread-safe. ``enable(_:vectors:)``, ``grow(_:to:)``, ``disable(_:)`` and closing the device
/// run one at a time, each from its check to its record, so what this object records is what
/// the kernel has wired. Disabling an index ends its sources' event-loop registrations first
/// (waiting for running handlers), then disables it in the kernel, then closes its eventfds.
/// Handlers must therefore not call these three (see ``EventLoop``); the other methods never wait.
public final class Interrupts: Sendable {
    private typealias Wiring = [IRQIndex: [InterruptSource]]
    /// The device, named in errors.
    private let address: PCIAddress
    private let access: any DeviceAccess
    private let system: any SystemCalls
    private let logger: Logger
    /// Held from start to end of enable, grow and disable.
    private let wiring = Mutex<Wiring>([:])
    /// What `wiring` holds after the last operation, for ``sources(_:)``, which never waits.
    private let published = Mutex<Wiring>([:])

    init(address: PCIAddress, access: any DeviceAccess, system: any SystemCalls, logger: Logger) {
        self.address = address
        self.access = access
        self.system = system
        self.logger = logger
    }

    /// What the kernel reports for `index`.
    public func info(_ index: IRQIndex) throws(VFIOError) -> IRQInfo { try access.interruptInfo(index) }

    /// The sources currently enabled for `index`, by vector.
    public func sources(_ index: IRQIndex) -> [InterruptSource] { published.withLock { $0[index] ?? [] } }

    /// Enables vectors `0..<count` of `index`, each as an eventfd (UIO: its INTx file).
    /// Enabling an index that is already on replaces its vectors, as disabling it first would.
    public func enable(_ index: IRQIndex, vectors count: Int = 1) throws(VFIOError) -> [InterruptSource] {
        try operate { (w) throws(VFIOError) in try enable(index, vectors: count, &w) }
    }

    /// Adds vectors to an enabled MSI-X index so it has `count`. Where the kernel allows
    /// dynamic MSI-X (no NORESIZE flag) the running vectors are untouched; otherwise the index
    /// is disabled and re-enabled with all of them, keeping the existing eventfds and their
    /// registrations (a message the device sends in between is lost). Returns the new sources.
    public func grow(_ index: IRQIndex, to count: Int) throws(VFIOError) -> [InterruptSource] {
        try operate { (w) throws(VFIOError) in
            guard let current = w[index] else { return try enable(index, vectors: count, &w) }
            let info = try access.interruptInfo(index)
            guard count <= info.count else { throw .interruptUnavailable(address, index, requested: count, available: info.count) }
            guard count > current.count else { return [] }
            let added = try makeSources(index, vectors: current.count..<count)
            do throws(VFIOError) {
                if info.flags.contains(.noResize) {
                    // vfio allocates vectors only when the index is enabled, so it goes off and on again.
                    try access.disable(index)
                    do throws(VFIOError) {
                        try access.setTriggers(index, start: 0, eventfds: (current + added).map(\.fd.rawValue))
                    } catch {
                        try? access.setTriggers(index, start: 0, eventfds: current.map(\.fd.rawValue))
                        throw error
                    }
                } else {
                    try access.setTriggers(index, start: current.count, eventfds: added.map(\.fd.rawValue))
                }
            } catch {
                close(added)
                throw error
            }
            w[index] = current + added
            logger.info(
                info.flags.contains(.noResize)
                    ? "grew \(index) by disabling and re-enabling it (the kernel has no dynamic MSI-X)" : "grew \(index) while enabled",
                metadata: ["device": "\(address)", "from": "\(current.count)", "to": "\(count)"])
            return added
        }
    }

    /// True when the kernel lets MSI-X vectors be added while enabled.
    public func supportsDynamicGrowth(_ index: IRQIndex) throws(VFIOError) -> Bool {
        try !access.interruptInfo(index).flags.contains(.noResize)
    }

    /// Disables `index`: ends its sources' registrations, disables it in the kernel and closes its
    /// eventfds. Disabling an index that is off does nothing.
    public func disable(_ index: IRQIndex) throws(VFIOError) {
        try operate { (w) throws(VFIOError) in try disable(index, &w) }
    }

    /// Unmasks INTx after its handler has quieted the device (VFIO automasks INTx when it fires).
    public func unmask(_ index: IRQIndex = .intx) throws(VFIOError) { try access.unmask(index) }

    /// Masks a maskable index (INTx).
    public func mask(_ index: IRQIndex = .intx) throws(VFIOError) { try access.mask(index) }

    /// Fires `vector` from software (VFIO's ACTION_TRIGGER with DATA_NONE), as if the device had.
    public func trigger(_ index: IRQIndex, vector: Int) throws(VFIOError) { try access.trigger(index, vector: vector) }

    /// Disables every index. Called when the device closes.
    func disableAll() {
        operate { w in
            for index in Array(w.keys) { try? disable(index, &w) }
        }
    }

    /// Runs one operation with the wiring held, then publishes the result.
    private func operate<R: Sendable, E: Error>(_ body: (inout Wiring) throws(E) -> R) throws(E) -> R {
        try wiring.withLock { (w) throws(E) -> R in
            defer {
                let snapshot = w
                published.withLock { $0 = snapshot }
            }
            return try body(&w)
        }
    }

    private func enable(_ index: IRQIndex, vectors count: Int, _ w: inout Wiring) throws(VFIOError) -> [InterruptSource] {
        let info = try access.interruptInfo(index)
        guard count >= 1, count <= info.count else { throw .interruptUnavailable(address, index, requested: count, available: info.count) }
        let exclusive: [IRQIndex] = [.intx, .msi, .msix]
        if exclusive.contains(index), let other = exclusive.first(where: { $0 != index && w[$0] != nil }) {
            throw .interruptKindInUse(address, requested: index, enabled: other)
        }
        try disable(index, &w)
        if let native = access.nativeInterruptSource {
            guard index == .intx else { throw .interruptUnavailable(address, index, requested: count, available: 0) }
            try access.unmask(.intx)
            native.rearm()
            w[.intx] = [native]
            return [native]
        }
        let sources = try makeSources(index, vectors: 0..<count)
        do { try access.setTriggers(index, start: 0, eventfds: sources.map(\.fd.rawValue)) } catch {
            close(sources)
            throw error
        }
        w[index] = sources
        return sources
    }

    private func disable(_ index: IRQIndex, _ w: inout Wiring) throws(VFIOError) {
        guard let sources = w.removeValue(forKey: index) else { return }
        try retire(sources) { () throws(VFIOError) in try access.disable(index) }
    }

    /// Ends the sources' registrations, runs `unwire` (the kernel lets go of them), and closes
    /// their files, in that order.
    private func retire(_ sources: [InterruptSource], unwire: () throws(VFIOError) -> Void) throws(VFIOError) {
        for s in sources { s.endRegistrations() }
        defer { close(sources) }
        try unwire()
    }

    /// Closes sources the kernel does not hold (any registration is ended first).
    private func close(_ sources: [InterruptSource]) {
        for s in sources {
            s.endRegistrations()
            s.unwired()
        }
    }

    private func makeSources(_ index: IRQIndex, vectors: Range<Int>) throws(VFIOError) -> [InterruptSource] {
        var made: [InterruptSource] = []
        for vector in vectors {
            do {
                let fd = try system.eventfd(initialValue: 0, flags: Int32(EFD_NONBLOCK))
                made.append(InterruptSource(eventfd: fd, address: address, index: index, vector: vector, system: system))
            } catch {
                close(made)
                throw error.vfio(SystemCall("eventfd", detail: "for \(index) vector \(vector)"))
            }
        }
        return made
    }
}
