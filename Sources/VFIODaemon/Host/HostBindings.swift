import Logging
import PCI
import Synchronization
import SystemPackage
import VFIOHost
import VFIOKit
#if canImport(Glibc)
import Glibc
#endif

/// What a daemon holds for the host as a whole, whether it runs drivers itself or in worker
/// processes: the state directory and its lock, and the devices it bound itself, journalled so
/// that a killed daemon's successor gives them back.
final class HostBindings: Sendable {
    let discovery: PCIDiscovery
    private let configuration: DaemonConfiguration
    private let binding: HostBinding
    private let journal: BindingJournal
    private let logger: Logger

    private struct State {
        var lock: DaemonLock?
        /// Devices this daemon bound itself, to give back at the end.
        var bound: [PCIAddress] = []
    }
    private let state = Mutex(State())

    init(configuration: DaemonConfiguration, system: any SystemCalls, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let tree = HostTree(root: "/", system: system)
        let enumerator: (any PCIDeviceEnumerator)? = system is HostSystemCalls ? nil : SysfsPCIEnumerator(tree: tree)
        discovery = PCIDiscovery(tree: tree, enumerator: enumerator)
        binding = HostBinding(discovery: discovery, store: BindingStateStore(directory: configuration.stateDirectory))
        journal = BindingJournal(stateDirectory: configuration.stateDirectory)
    }

    /// Makes the state directory and takes its lock, then finishes a killed daemon's restore.
    /// Throws when another daemon holds the lock or the restore fails; nothing is held then.
    func acquire() throws(DaemonError) {
        let dir = configuration.stateDirectory
        var made = ""
        for part in dir.split(separator: "/") {
            made += "/" + part
            if mkdir(made, 0o755) != 0 && errno != EEXIST {
                throw .systemCall(
                    operation: "create the state directory \(dir)", errno: Errno(rawValue: errno), remedy: "run as root or set VFIOKIT_STATE_DIR")
            }
        }
        let lock = try DaemonLock(stateDirectory: dir)
        try finishLeftoverRestore()
        state.withLock { $0.lock = lock }
    }

    /// The configured devices that are there; the others are logged as awaited.
    func present() -> [DaemonConfiguration.Device] {
        let present = configuration.devices.filter { discovery.exists($0.address) }
        for absent in configuration.devices where !present.contains(absent) {
            logger.warning("not present; attached when udev reports it added", metadata: ["device": "\(absent.address)"])
        }
        return present
    }

    /// Binds the devices not yet on the userspace driver, journalling them first so that a
    /// killed daemon's successor can give them back.
    func bind(_ addresses: [PCIAddress]) throws(DaemonError) {
        let driver: DriverName = configuration.backend == .uio ? .uioPCIGeneric : .vfioPCI
        let needed = addresses.filter { (try? discovery.device($0).driver) != driver }
        guard !needed.isEmpty else { return }
        let bound = state.withLock { s in
            s.bound += needed.filter { !s.bound.contains($0) }
            return s.bound
        }
        try journal.record(bound, pid: getpid())
        do {
            let (_, changes) = try binding.bind(BindRequest(addresses: needed, driver: driver))
            for change in changes { logger.notice("bound \(change.address): \(change.from?.rawValue ?? "no driver") → \(driver)") }
        } catch {
            // What the refusal left on its host driver is not this daemon's to give back.
            let notBound = needed.filter { (try? discovery.device($0).driver) != driver }
            let kept = state.withLock { s in
                s.bound.removeAll { notBound.contains($0) }
                return s.bound
            }
            // A journal left longer is harmless: a successor restores only devices still on a
            // userspace driver.
            try? journal.record(kept, pid: getpid())
            throw .setup("cannot bind \(needed.map(\.description).joined(separator: ", ")): \(error)")
        }
    }

    /// Gives back the original driver of every device this daemon bound that is still there,
    /// empties the journal once they are all back, then lets go of the lock. Does nothing
    /// without the lock, so it is safe to call twice or after ``acquire()`` failed.
    func release() {
        guard let (lock, bound) = state.withLock({ s -> (DaemonLock, [PCIAddress])? in
            defer { s = State() }
            return s.lock.map { ($0, s.bound) }
        }) else { return }
        let present = bound.filter { discovery.exists($0) }
        do {
            if !present.isEmpty {
                let (_, changes) = try binding.unbind(UnbindRequest(addresses: present, restore: true))
                for change in changes { logger.notice("restored \(change.address) to \(change.to?.rawValue ?? "no driver")") }
            }
            if !bound.isEmpty { try? journal.record([], pid: getpid()) }
        } catch {
            logger.error("cannot restore \(present.map(\.description).joined(separator: ", ")): \(error); run `vfiokit unbind --restore`")
        }
        withExtendedLifetime(lock) {}
    }

    /// A daemon killed before its shutdown leaves its journal: give its devices back now.
    private func finishLeftoverRestore() throws(DaemonError) {
        guard let (pid, devices) = try journal.leftover() else { return }
        let userspace: Set<DriverName> = [.vfioPCI, .uioPCIGeneric]
        let stillBound = devices.filter { (try? discovery.device($0).driver).flatMap { $0 }.map(userspace.contains) ?? false }
        logger.notice("a previous daemon (pid \(pid)) stopped without restoring \(devices.count) devices; restoring them now")
        if !stillBound.isEmpty {
            do {
                let (_, changes) = try binding.unbind(UnbindRequest(addresses: stillBound, restore: true))
                for change in changes { logger.notice("recovered \(change.address): restored to \(change.to?.rawValue ?? "no driver")") }
            } catch {
                throw .setup("cannot finish the restore a killed daemon (pid \(pid)) left: \(error); run `vfiokit unbind --restore \(stillBound.map(\.description).joined(separator: " "))`")
            }
        }
        try journal.record([], pid: getpid())
    }
}
