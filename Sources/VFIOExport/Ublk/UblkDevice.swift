#if canImport(Glibc)
import Glibc
#endif
import CUring
import Synchronization
import VFIOKit

/// A ublk block device this process serves: /dev/ublkbN, backed by a ``UblkBackend``, each
/// ublk queue served on its device queue's owner thread (``UblkQueue``); it starts no thread.
///
/// ``start(backend:queues:depth:controlPath:)`` returns once /dev/ublkbN exists, with the
/// backend's size, logical block size and limits. ``stop()`` takes it down in order: STOP_DEV
/// (the kernel finishes in-flight requests, which the queues serve, then removes the block
/// device), each queue leaves its owner thread and closes its ring, /dev/ublkcN closes,
/// DEL_DEV frees the device number.
public final class UblkDevice: @unchecked Sendable {
    /// The kernel's number for the device: /dev/ublkbN and /dev/ublkcN.
    public let id: UInt32
    public var blockDevice: String { "/dev/ublkb\(id)" }
    public var charDevice: String { "/dev/ublkc\(id)" }
    public let geometry: BlockGeometry
    /// The info the kernel settled on at ADD_DEV (queues, depth, granted flags).
    public let info: cublk_dev_info
    private let control: UblkControl
    private let charFD: Int32
    private let queues: [UblkQueue]
    /// Each queue's owner thread, and where its block queues come from.
    private let reactors: [QueueReactor]
    private let backend: any UblkBackend
    private let stopped = Atomic<Bool>(false)

    /// Counted by every queue on its owner thread; the kernel is the one client while the
    /// block device exists.
    private let counters = ExportCounters()

    /// What the device has served: requests and bytes by kind, errors, in flight.
    public var statistics: ExportStatistics { counters.snapshot }

    /// Adds and starts a device on `backend` with `queues` queues (at most the backend's) of
    /// `depth` tags (at most the backend's). Throws ``UblkError/controlDeviceMissing(path:)``
    /// when ublk_drv is not loaded; a failure after ADD_DEV deletes the device again.
    public static func start(
        backend: any UblkBackend, queues: Int? = nil, depth: Int? = nil, controlPath: String = UblkControl.defaultPath
    ) throws(UblkError) -> UblkDevice {
        let geometry = backend.geometry
        try geometry.validateForUblk()
        let queueCount = min(queues ?? backend.queueCount, backend.queueCount)
        let depth = min(depth ?? backend.queueDepth, backend.queueDepth, Int(CUBLK_MAX_QUEUE_DEPTH))
        let control = try UblkControl(path: controlPath)
        let info = try control.addDevice(geometry.deviceInfo(queues: queueCount, depth: depth, flags: 0))
        do {
            return try UblkDevice(control: control, info: info, geometry: geometry, backend: backend)
        } catch {
            // A failure before the device object existed leaves the added device to delete here
            // (after one, stop() has deleted it and this finds nothing).
            try? control.delete(info.dev_id)
            throw error
        }
    }

    private init(control: UblkControl, info: cublk_dev_info, geometry: BlockGeometry, backend: any UblkBackend) throws(UblkError) {
        let id = info.dev_id
        // The kernel grants no data-path feature this server did not ask for; refuse one that
        // would change the protocol (user copy, get-data) rather than misserve it.
        let protocolFlags = CUBLK_F_USER_COPY | CUBLK_F_NEED_GET_DATA
        guard info.flags & protocolFlags == 0 else {
            throw .unsupported("the kernel turned on flags 0x\(String(info.flags & protocolFlags, radix: 16)) this server did not ask for")
        }
        try control.setParameters(id, geometry.parameters())
        let path = "/dev/ublkc\(id)"
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .system(operation: "opening \(path)", errno: errno) }
        var made: [UblkQueue] = []
        var owners: [QueueReactor] = []
        do throws(UblkError) {
            for q in 0..<Int(info.nr_hw_queues) {
                owners.append(try backend.reactor(forQueue: q))
                let data = try backend.allocateData(Int(info.queue_depth) * geometry.maxTransfer)
                made.append(
                    try UblkQueue(
                        index: q, depth: Int(info.queue_depth), geometry: geometry, charFD: fd,
                        ioctlEncoded: control.ioctlEncoded, data: data, counters: counters))
            }
        } catch {
            made.removeAll()
            close(fd)
            throw error
        }
        self.id = id
        self.info = info
        self.geometry = geometry
        self.control = control
        self.backend = backend
        charFD = fd
        queues = made
        reactors = owners
        do throws(UblkError) {
            try attachQueues()
            try control.start(id)
            counters.clients.store(1, ordering: .relaxed)
            counters.connections.store(1, ordering: .relaxed)
        } catch {
            // Every property is set, so deinit will run: stop() undoes it all, once.
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// Puts each queue on its owner thread: there it opens its block queue, watches its ring
    /// and fetches every tag (START_DEV waits for those fetches).
    private func attachQueues() throws(UblkError) {
        for (queue, reactor) in zip(queues, reactors) {
            var failure: UblkError?
            reactor.run {
                do throws(UblkError) { try queue.attach(backend, reactor: reactor) } catch { failure = error }
            }
            if let failure { throw failure }
        }
    }

    /// Takes each queue off its owner thread (see ``UblkQueue/detach(_:reactor:)``).
    private func detachQueues() {
        for (queue, reactor) in zip(queues, reactors) {
            reactor.run { queue.detach(backend, reactor: reactor) }
        }
    }

    /// Stops and deletes the device, in order (see the type's comment). Safe to call more than
    /// once; errors are reported, and the steps after a failed one still run.
    @discardableResult
    public func stop() -> [UblkError] {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return [] }
        var errors: [UblkError] = []
        do { try control.stop(id) } catch { errors.append(error) }
        counters.clients.store(0, ordering: .relaxed)
        detachQueues()
        close(charFD)
        do { try control.delete(id) } catch { errors.append(error) }
        return errors
    }
}
