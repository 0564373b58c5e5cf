#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Synchronization
import SystemPackage

/// A device's interrupts: which kinds it has, and their vectors as ``InterruptSource``s.
///
/// Only one of INTx, MSI and MSI-X is enabled at a time, as in the kernel; enabling another
/// while one is on is refused with ``VFIOError/interruptKindInUse(requested:enabled:)``. Every eventfd made
/// here is closed when its index is disabled or the device closes. Thread-safe.
public final class Interrupts: Sendable {
    private let access: any DeviceAccess
    private let system: any SystemCalls
    private let enabled = Mutex<[IRQIndex: [InterruptSource]]>([:])

    init(access: any DeviceAccess, system: any SystemCalls) {
        self.access = access
        self.system = system
    }

    /// What the kernel reports for `index`.
    public func info(_ index: IRQIndex) throws(VFIOError) -> IRQInfo { try access.interruptInfo(index) }

    /// The sources currently enabled for `index`, by vector.
    public func sources(_ index: IRQIndex) -> [InterruptSource] { enabled.withLock { $0[index] ?? [] } }

    /// Enables vectors `0..<count` of `index`, each as an eventfd (UIO: its INTx file).
    /// Enabling an index that is already on replaces its vectors.
    public func enable(_ index: IRQIndex, vectors count: Int = 1) throws(VFIOError) -> [InterruptSource] {
        let info = try access.interruptInfo(index)
        guard count >= 1, count <= info.count else { throw .interruptUnavailable(index, requested: count, available: info.count) }
        let exclusive: [IRQIndex] = [.intx, .msi, .msix]
        if exclusive.contains(index), let other = exclusive.first(where: { $0 != index && !self.sources($0).isEmpty }) {
            throw .interruptKindInUse(requested: index, enabled: other)
        }
        try disable(index)
        if let native = access.nativeInterruptSource {
            guard index == .intx else { throw .interruptUnavailable(index, requested: count, available: 0) }
            try access.unmask(.intx)
            enabled.withLock { $0[.intx] = [native] }
            return [native]
        }
        let sources = try makeSources(index, vectors: 0..<count)
        do { try access.setTriggers(index, start: 0, eventfds: sources.map(\.fd.rawValue)) } catch {
            close(sources)
            throw error
        }
        enabled.withLock { $0[index] = sources }
        return sources
    }

    /// Adds vectors to an enabled MSI-X index so it has `count`. Where the kernel allows
    /// dynamic MSI-X (no NORESIZE flag) the running vectors are untouched; otherwise the index
    /// is disabled and re-enabled with all of them, keeping the existing eventfds (a message the
    /// device sends in between is lost). Returns the new sources.
    public func grow(_ index: IRQIndex, to count: Int) throws(VFIOError) -> [InterruptSource] {
        let info = try access.interruptInfo(index)
        let current = sources(index)
        guard !current.isEmpty else { return try enable(index, vectors: count) }
        guard count <= info.count else { throw .interruptUnavailable(index, requested: count, available: info.count) }
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
        enabled.withLock { $0[index] = current + added }
        return added
    }

    /// True when the kernel lets MSI-X vectors be added while enabled.
    public func supportsDynamicGrowth(_ index: IRQIndex) throws(VFIOError) -> Bool {
        try !access.interruptInfo(index).flags.contains(.noResize)
    }

    /// Disables `index` and closes its eventfds. Disabling an index that is off does nothing.
    public func disable(_ index: IRQIndex) throws(VFIOError) {
        guard let sources = enabled.withLock({ $0.removeValue(forKey: index) }) else { return }
        defer { close(sources) }
        try access.disable(index)
    }

    /// Unmasks INTx after its handler has quieted the device (VFIO automasks INTx when it fires).
    public func unmask(_ index: IRQIndex = .intx) throws(VFIOError) { try access.unmask(index) }

    /// Masks a maskable index (INTx).
    public func mask(_ index: IRQIndex = .intx) throws(VFIOError) { try access.mask(index) }

    /// Fires `vector` from software (VFIO's ACTION_TRIGGER with DATA_NONE), as if the device had.
    public func trigger(_ index: IRQIndex, vector: Int) throws(VFIOError) { try access.trigger(index, vector: vector) }

    /// Disables every index. Called when the device closes.
    func disableAll() {
        for index in enabled.withLock({ Array($0.keys) }) { try? disable(index) }
    }

    private func makeSources(_ index: IRQIndex, vectors: Range<Int>) throws(VFIOError) -> [InterruptSource] {
        var made: [InterruptSource] = []
        for vector in vectors {
            do {
                let fd = try system.eventfd(initialValue: 0, flags: Int32(EFD_NONBLOCK))
                made.append(InterruptSource(index: index, vector: vector, fd: fd, width: 8, ownsFile: true))
            } catch {
                close(made)
                throw error.vfio("eventfd for \(index) vector \(vector)")
            }
        }
        return made
    }

    private func close(_ sources: [InterruptSource]) {
        for s in sources where s.ownsFile { try? system.close(s.fd) }
    }
}
