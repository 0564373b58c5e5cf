#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import Synchronization
import VFIOHost

/// Follows udev's PCI events on a thread of its own: a removed device is released (when its
/// REQ did not already do it), and an added device the configuration names is attached.
final class UdevWatcher: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    /// The watcher's queue; a `sync` on it returns once its block has been released.
    private let queue = DispatchQueue(label: "vfiokit.udev")

    /// Starts watching; a monitor that cannot be opened is logged and watching is skipped.
    init(host: any DaemonHost, logger: Logger) {
        let monitor: PCIDeviceMonitor
        do { monitor = try PCIDeviceMonitor(source: .kernel) } catch {
            logger.warning("no udev monitor, so hot-plug is not followed: \(error)")
            finished.signal()
            return
        }
        let box = UncheckedMonitor(monitor)
        queue.async { [self] in
            defer { finished.signal() }
            var poller = pollfd(fd: box.monitor.fileDescriptor.rawValue, events: Int16(POLLIN), revents: 0)
            while !stopping.load(ordering: .acquiring) {
                guard poll(&poller, 1, 200) > 0 else { continue }
                while let event = box.monitor.nextEvent() {
                    switch event {
                    case let .removed(address): host.removeDevice(address, reason: "udev reported the device removed")
                    case let .added(address, _): host.deviceAdded(address)
                    default: break
                    }
                }
            }
        }
    }

    func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
        queue.sync {}  // the watcher's block, and the host it holds, are let go
    }

    /// The monitor moves to the watcher's thread and is used only there.
    private struct UncheckedMonitor: @unchecked Sendable {
        let monitor: PCIDeviceMonitor
        init(_ monitor: PCIDeviceMonitor) { self.monitor = monitor }
    }
}
