#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VFIODrivers
import VFIOKit

/// An NBD export of one namespace of a brought-up ``NVMeDriver``: listeners on a Unix socket
/// and/or a loopback TCP port, a control thread that accepts, a short-lived thread per client
/// for the handshake, and, in transmission, each client served on one NVMe queue owner's
/// thread (round-robin over the pairs) with no lock and no allocation per request.
///
/// ``start()`` and ``stop()`` are the whole life; a daemon owns one server per export and reads
/// ``statistics``. Several clients may use the export at once: NBD_FLAG_CAN_MULTI_CONN is
/// advertised, since every connection reaches the same namespace and an NVMe Flush commits
/// the namespace's whole volatile write cache, whichever queue the writes came through.
public final class NBDServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// The Unix socket to listen on.
        public var socketPath: String?
        /// A loopback IPv4 address and port to listen on too (port 0: the kernel picks).
        public var tcp: (host: String, port: UInt16)?
        /// The export's name (clients asking for "" get it too).
        public var exportName = ""
        public var readOnly = false
        /// Queue pairs to spread clients over (nil: all of the driver's from `firstQueue` on).
        public var queues: Int?
        /// The first queue pair the server uses (others of the driver may serve other exports).
        public var firstQueue = 0
        /// Requests in flight per client.
        public var depth = 32
        /// The largest request, in bytes (capped by the controller's MDTS).
        public var maxRequest = 1 << 20
        /// How long a client may take over one handshake read or write.
        public var handshakeTimeout: Duration = .seconds(10)
        /// How long ``stop()`` waits for clients to take their last replies before dropping them.
        public var stopTimeout: Duration = .seconds(5)

        public init() {}
    }

    public let configuration: Configuration
    public let namespaceID: UInt32
    private let namespace: NVMeNamespaceIdentity
    /// What clients see: size, block size, largest request, read-only.
    public let geometry: BlockGeometry
    public let counters = ExportCounters()
    private let driver: NVMeDriver
    private let owners: [NVMeQueueOwner]
    private let routers: [NVMeQueueRouter]
    private let listeners: [NBDListener]
    /// A pipe: threads that change ``state`` write a byte, waiters poll the read end.
    private let wakeUp: Int32, wakeUpWriter: Int32
    private let handshakeExport: NBDHandshake.Export
    private let state = Mutex(State())

    private struct State {
        var started = false
        var stopping = false
        var acceptRunning = false
        var handshakes: Set<Int32> = []
        var connections: [ObjectIdentifier: NBDConnection] = [:]
        var nextOwner = 0
    }

    /// The export's counters now.
    public var statistics: ExportStatistics { counters.snapshot }
    /// The URI a client uses (the Unix socket when there is one).
    public var uri: String {
        if let path = listeners.first(where: { $0.path != nil })?.path { return "nbd+unix:///?socket=\(path)" }
        return tcpURI ?? ""
    }
    /// `nbd://HOST:PORT` when listening on TCP.
    public var tcpURI: String? {
        guard let tcp = configuration.tcp, let port = listeners.first(where: { $0.port != nil })?.port else { return nil }
        return "nbd://\(tcp.host):\(port)"
    }

    /// Checks the namespace and binds the listeners; ``start()`` begins accepting.
    public init(driver: NVMeDriver, namespace namespaceID: UInt32 = 1, configuration: Configuration) throws(NBDError) {
        guard configuration.socketPath != nil || configuration.tcp != nil else {
            throw .configuration("give a Unix socket path, a 127.0.0.1:PORT, or both")
        }
        guard (1...1024).contains(configuration.depth) else { throw .configuration("a depth of \(configuration.depth) is outside 1…1024") }
        guard let ns = driver.namespaces.first(where: { $0.id == namespaceID }) else {
            throw .device("namespace \(namespaceID) does not exist: the active namespaces are \(driver.namespaces.map(\.id))")
        }
        let first = configuration.firstQueue
        let count = min(configuration.queues ?? driver.queueCount, driver.queueCount - first)
        guard first >= 0, count >= 1 else {
            throw .device("the driver has \(driver.queueCount) I/O queue pairs, none from \(first) on: bring it up first, with more queues")
        }
        var owners: [NVMeQueueOwner] = []
        for i in first..<first + count {
            do throws(NVMeError) { owners.append(try driver.queueOwner(i)) } catch { throw .device("I/O queue pair \(i): \(error)") }
        }
        let maxRequest = min(configuration.maxRequest, driver.maxTransfer) / ns.blockSize * ns.blockSize
        guard maxRequest >= ns.blockSize else {
            throw .configuration("a largest request of \(configuration.maxRequest) bytes is below one \(ns.blockSize)-byte block")
        }
        // NBD cannot advertise discard or write-zeroes limits: a discard runs as a chain of
        // Dataset Management commands of one range each (DMRSL), a write-zeroes as a chain of
        // Write Zeroes commands (WZSL), so NBD's 32-bit lengths fit either.
        let controller = driver.controller
        geometry = BlockGeometry(
            blockSize: ns.blockSize, blocks: ns.size, maxTransfer: maxRequest,
            volatileWriteCache: controller?.volatileWriteCache ?? true,
            maxDiscardBlocks: controller?.supportsDatasetManagement == true ? .max : nil,
            maxWriteZeroesBlocks: controller?.supportsWriteZeroes == true ? .max : nil,
            readOnly: configuration.readOnly)
        var flags = NBD.Flag.hasFlags | NBD.Flag.sendFlush | NBD.Flag.sendFUA | NBD.Flag.canMultiConn
        if geometry.readOnly { flags |= NBD.Flag.readOnly }
        if !geometry.readOnly, geometry.maxDiscardBlocks != nil { flags |= NBD.Flag.sendTrim }
        if !geometry.readOnly, geometry.maxWriteZeroesBlocks != nil { flags |= NBD.Flag.sendWriteZeroes }
        handshakeExport = NBDHandshake.Export(
            name: configuration.exportName, size: geometry.bytes, transmissionFlags: flags,
            minimumBlock: UInt32(ns.blockSize), preferredBlock: UInt32(max(ns.blockSize, 4096)), maximumBlock: UInt32(maxRequest))
        self.driver = driver
        self.namespaceID = namespaceID
        namespace = ns
        self.configuration = configuration
        self.owners = owners
        routers = owners.map { NVMeQueueRouter(owner: $0) }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw .system(operation: "pipe for the NBD server's wake-ups", errno: errno) }
        for fd in ends {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        (wakeUp, wakeUpWriter) = (ends[0], ends[1])
        var made: [NBDListener] = []
        do throws(NBDError) {
            if let path = configuration.socketPath { made.append(try .unix(path)) }
            if let tcp = configuration.tcp { made.append(try .tcp(host: tcp.host, port: tcp.port)) }
        } catch {
            for l in made { l.close() }
            close(wakeUp)
            close(wakeUpWriter)
            throw error
        }
        listeners = made
    }

    deinit {
        stop()
        close(wakeUp)
        close(wakeUpWriter)
    }

    /// Starts serving: the routers take their owners' completions and the accept thread runs.
    public func start() throws(NBDError) {
        guard
            state.withLock({ s in
                defer { s.started = true }; return !s.started && !s.stopping
            })
        else { return }
        for (router, owner) in zip(routers, owners) { router.install(on: owner) }
        state.withLock { $0.acceptRunning = true }
        do {
            try spawn("nbd-accept") { [self] in acceptLoop() }
        } catch {
            state.withLock { $0.acceptRunning = false }
            throw error
        }
    }

    /// Stops in order: no new clients; each client's in-flight requests finish and are
    /// answered, then it is disconnected (one that does not take its replies within
    /// ``Configuration/stopTimeout`` is dropped); the listeners close. Idempotent.
    ///
    /// Returns the clients whose device requests never finished, even after the driver's
    /// command timeout twice over (a controller that was given up on): they are left as they
    /// are, their buffers kept, since the device may still write to them.
    @discardableResult
    public func stop() -> Int {
        let first = state.withLock { s in
            defer { s.stopping = true }; return !s.stopping
        }
        guard first else { return 0 }
        for l in listeners { shutdown(l.fd, Int32(SHUT_RDWR)) }
        // The accept thread ends; handshakes still running are cut short.
        waitUntil(nil) { $0.acceptRunning == false }
        state.withLock { s in for fd in s.handshakes { shutdown(fd, Int32(SHUT_RDWR)) } }
        waitUntil(nil) { $0.handshakes.isEmpty }
        for connection in state.withLock({ Array($0.connections.values) }) {
            connection.owner.reactor.run { connection.beginStop() }
        }
        if !waitUntil(configuration.stopTimeout, { $0.connections.isEmpty }) {
            for connection in state.withLock({ Array($0.connections.values) }) {
                connection.owner.reactor.run { connection.abandon() }
            }
            waitUntil(driver.configuration.commandTimeout * 2) { $0.connections.isEmpty }
        }
        for (router, owner) in zip(routers, owners) { router.uninstall(from: owner) }
        for l in listeners { l.close() }
        return state.withLock { $0.connections.count }
    }

    // MARK: Threads

    private func notify() {
        var byte: UInt8 = 1
        _ = write(wakeUpWriter, &byte, 1)
    }

    /// Sleeps on the wake-up eventfd until `done` holds (true) or `timeout` passes (false).
    @discardableResult
    private func waitUntil(_ timeout: Duration?, _ done: (State) -> Bool) -> Bool {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        while !state.withLock({ done($0) }) {
            var ms: Int32 = 100
            if let deadline {
                let left = deadline - clock.now
                if left <= .zero { return false }
                ms = Int32(min(100, max(1, left / .milliseconds(1))))
            }
            var p = pollfd(fd: wakeUp, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, ms) > 0 { drainWakeUps() }
        }
        // Others may be waiting on the same wake-up: pass it on.
        notify()
        return true
    }

    private func drainWakeUps() {
        var bytes: (UInt64, UInt64) = (0, 0)
        while read(wakeUp, &bytes, 16) > 0 {}
    }

    private func acceptLoop() {
        defer {
            state.withLock { $0.acceptRunning = false }
            notify()
        }
        // stop() shuts the listening sockets down, which wakes this poll.
        var fds = listeners.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        while !state.withLock({ $0.stopping }) {
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0, errno != EINTR { return }
            for (i, listener) in listeners.enumerated() where fds[i].revents & Int16(POLLIN) != 0 {
                let fd = accept(listener.fd, nil, nil)
                guard fd >= 0 else { continue }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                let admitted = state.withLock { s in
                    guard !s.stopping else { return false }
                    s.handshakes.insert(fd)
                    return true
                }
                guard admitted else {
                    close(fd)
                    continue
                }
                do {
                    try spawn("nbd-handshake") { [self] in handshake(fd, tcp: listener.port != nil) }
                } catch {
                    state.withLock { _ = $0.handshakes.remove(fd) }
                    close(fd)
                }
            }
        }
    }

    /// One client's handshake (on its own thread), then its hand-over to a queue owner.
    private func handshake(_ fd: Int32, tcp: Bool) {
        var timeout = timeval(tv_sec: Int(configuration.handshakeTimeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let outcome = NBDHandshake(fd: fd, export: handshakeExport).run()
        // Leaving the handshake set and joining the connections is one step, so stop() sees it.
        let connection: NBDConnection? = state.withLock { s in
            s.handshakes.remove(fd)
            guard case .transmission(let structured) = outcome, !s.stopping else { return nil }
            var zero = timeval()
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &zero, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, socklen_t(MemoryLayout<timeval>.size))
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if tcp {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            let i = s.nextOwner % owners.count
            s.nextOwner += 1
            guard
                let connection = try? NBDConnection(
                    fd: fd, owner: owners[i], router: routers[i], namespace: namespace, limits: driver.limits, geometry: geometry,
                    structured: structured, depth: configuration.depth, dma: driver.device.dma, counters: counters,
                    ended: { [weak self] c in self?.ended(c) })
            else { return nil }
            s.connections[ObjectIdentifier(connection)] = connection
            counters.clients.add(1, ordering: .relaxed)
            counters.connections.add(1, ordering: .relaxed)
            return connection
        }
        guard let connection else {
            close(fd)
            notify()
            return
        }
        var attached = true
        connection.owner.reactor.run {
            do { try connection.attach() } catch { attached = false }
        }
        if !attached {
            state.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
            counters.clients.subtract(1, ordering: .relaxed)
            close(fd)
        }
        notify()
    }

    /// A connection finished (on its owner thread).
    private func ended(_ connection: NBDConnection) {
        state.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
        notify()
    }

    /// Runs `body` on a new detached thread.
    private func spawn(_ name: String, _ body: @escaping () -> Void) throws(NBDError) {
        final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, context)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(context).release()
            throw .system(operation: "pthread_create for \(name)", errno: rc)
        }
        pthread_detach(thread)
    }
}
