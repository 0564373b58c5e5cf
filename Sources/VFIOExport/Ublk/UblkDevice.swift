#if canImport(Glibc)
import Glibc
#endif
import CUring
import Synchronization

/// A ublk block device this process serves: /dev/ublkbN, backed by a ``UblkBackend``, with
/// one thread per queue running ``UblkQueue/serve(_:)`` on the backend's block queue.
///
/// ``start(backend:queues:depth:controlPath:)`` returns once /dev/ublkbN exists, with the
/// backend's size, logical block size and limits. ``stop()`` takes it down in order: STOP_DEV
/// (the kernel finishes in-flight requests, which the queues serve, then removes the block
/// device), the queue threads end, /dev/ublkcN closes, DEL_DEV frees the device number.
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
    private let threads: Mutex<[pthread_t]>
    private let stopped = Atomic<Bool>(false)

    /// Requests served and those answered with an error, over every queue.
    public var served: UInt64 { queues.reduce(0) { $0 + $1.served.load(ordering: .relaxed) } }
    public var failed: UInt64 { queues.reduce(0) { $0 + $1.failed.load(ordering: .relaxed) } }

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
        do throws(UblkError) {
            for q in 0..<Int(info.nr_hw_queues) {
                let data = try backend.allocateData(Int(info.queue_depth) * geometry.maxTransfer)
                made.append(try UblkQueue(
                    index: q, depth: Int(info.queue_depth), geometry: geometry, charFD: fd,
                    ioctlEncoded: control.ioctlEncoded, data: data))
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
        charFD = fd
        queues = made
        threads = Mutex([])
        do throws(UblkError) {
            try spawnQueues(backend)
            try control.start(id)
        } catch {
            // Every property is set, so deinit will run: stop() undoes it all, once.
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// What one queue thread needs, and what it reports back.
    private final class QueueRun: @unchecked Sendable {
        let queue: UblkQueue
        let backend: any UblkBackend
        let ready: Int32
        let error = Mutex<UblkError?>(nil)
        init(queue: UblkQueue, backend: any UblkBackend, ready: Int32) {
            self.queue = queue
            self.backend = backend
            self.ready = ready
        }
    }

    /// Starts one thread per queue and waits until each has fetched every tag or failed.
    private func spawnQueues(_ backend: any UblkBackend) throws(UblkError) {
        let ready = eventfd(0, Int32(EFD_CLOEXEC | EFD_SEMAPHORE))
        guard ready >= 0 else { throw .system(operation: "eventfd for ublk queue start-up", errno: errno) }
        defer { close(ready) }
        var runs: [QueueRun] = []
        for queue in queues {
            let run = QueueRun(queue: queue, backend: backend, ready: ready)
            var thread = pthread_t()
            let context = Unmanaged.passRetained(run).toOpaque()
            let rc = pthread_create(&thread, nil, { raw in
                let run = Unmanaged<QueueRun>.fromOpaque(raw!).takeRetainedValue()
                var signalled = false
                do throws(UblkError) {
                    try run.backend.withQueue(run.queue.index) { blockQueue in
                        do throws(UblkError) {
                            try run.queue.serve(blockQueue) {
                                var one: UInt64 = 1
                                _ = write(run.ready, &one, 8)
                                signalled = true
                            }
                        } catch {
                            run.error.withLock { $0 = error }
                        }
                    }
                } catch {
                    run.error.withLock { $0 = error }
                }
                if !signalled {
                    var one: UInt64 = 1
                    _ = write(run.ready, &one, 8)
                }
                return nil
            }, context)
            guard rc == 0 else {
                Unmanaged<QueueRun>.fromOpaque(context).release()
                throw .system(operation: "pthread_create for ublk queue \(queue.index)", errno: rc)
            }
            threads.withLock { $0.append(thread) }
            runs.append(run)
        }
        for _ in runs {
            var value: UInt64 = 0
            while read(ready, &value, 8) < 0 && errno == EINTR {}
        }
        for run in runs {
            if let error = run.error.withLock({ $0 }) { throw error }
        }
    }

    /// Wakes every queue thread and waits for it to end.
    private func endQueues() {
        for queue in queues { queue.wake() }
        let joining = threads.withLock { t in defer { t.removeAll() }; return t }
        for thread in joining { pthread_join(thread, nil) }
        for queue in queues { queue.release() }
    }

    /// Stops and deletes the device, in order (see the type's comment). Safe to call more than
    /// once; errors are reported, and the steps after a failed one still run.
    @discardableResult
    public func stop() -> [UblkError] {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return [] }
        var errors: [UblkError] = []
        do { try control.stop(id) } catch { errors.append(error) }
        endQueues()
        close(charFD)
        do { try control.delete(id) } catch { errors.append(error) }
        return errors
    }
}
