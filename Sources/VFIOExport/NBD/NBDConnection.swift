#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers
import VFIOKit

/// One client in the transmission phase, served on one NVMe queue owner's thread: its socket
/// is a watch on the owner's reactor, each request goes to the queue pair through an
/// ``NVMeBlockQueue``, and each completion is answered from the tag's DMA buffer.
///
/// Everything a request needs is allocated once, when the connection is made: ``depth`` tags,
/// each with a buffer of the export's advertised largest request, its decoded request and its
/// reply header. On the owner thread there is no lock and no allocation per request. A client
/// that ignores the advertised size (the kernel's nbd client does) may send up to NBD's default
/// 32 MiB: such a request uses one larger buffer, made at the first and kept, one at a time,
/// and runs on the device as a chain of commands. Requests the
/// export refuses are answered with the protocol's error (EINVAL, ENOSPC, EPERM, EOPNOTSUPP,
/// ESHUTDOWN once the server stops); a bad request magic, a dead socket or the end of the
/// stream ends the connection, once the requests already on the device have finished (their
/// buffers stay until then).
final class NBDConnection {
    let fd: Int32
    let owner: NVMeQueueOwner
    let router: NVMeQueueRouter
    let namespace: NVMeNamespaceIdentity
    /// What Write Zeroes and Dataset Management commands must keep to.
    let limits: NVMeNVMLimits
    let geometry: BlockGeometry
    /// The client negotiated structured replies.
    let structured: Bool
    let depth: Int
    private let counters: ExportCounters
    private let ended: (NBDConnection) -> Void
    private let data: DMABuffer
    private let dma: DMASpace
    /// The export with NBD's default largest payload, which requests are checked against.
    private let accepted: BlockGeometry
    /// The buffer of a request over ``geometry``'s largest, the tag using it, and a tag whose
    /// request waits for it (nothing more is read meanwhile).
    private var large: LargeBuffer?
    private var largeTag = -1, parkedTag = -1
    private var queue: NVMeBlockQueue?
    private var watchID = -1
    private var interest: UInt32 = 0

    // Per tag, allocated once.
    private let requests: UnsafeMutablePointer<BlockRequest>
    private let handles: UnsafeMutablePointer<UInt64>
    private let commands: UnsafeMutablePointer<UInt16>
    private let offsets: UnsafeMutablePointer<UInt64>
    private let errors: UnsafeMutablePointer<UInt32>
    private let replyHeaders: UnsafeMutableRawPointer
    private let headerLengths: UnsafeMutablePointer<Int>
    private let dataLengths: UnsafeMutablePointer<Int>
    private let freeTags: UnsafeMutablePointer<UInt16>
    private var freeCount: Int

    // Replies waiting to be sent, oldest first, and how much of the oldest has gone.
    private let sendRing: UnsafeMutablePointer<UInt16>
    private var sendHead = 0, sendCount = 0, sentBytes = 0
    private static let batch = 8
    private let iov: UnsafeMutablePointer<iovec>
    private let message: UnsafeMutablePointer<msghdr>

    // The request being received.
    private let header: UnsafeMutableRawPointer
    private var headerGot = 0
    private var payloadTag = -1, payloadGot = 0, payloadLength = 0, payloadDiscard = false
    /// A request waiting for a free slot on the shared queue pair.
    private var pendingStart = -1

    /// No more requests are read (end of stream, NBD_CMD_DISC, or the server stops).
    private(set) var closing = false
    /// The socket is unusable: nothing more is sent.
    private(set) var dead = false
    /// The server is stopping: requests already read but not started get ESHUTDOWN.
    private var stopping = false
    private(set) var finished = false

    /// Allocates the connection's tags and buffers (any thread); ``attach()`` starts it.
    init(fd: Int32, owner: NVMeQueueOwner, router: NVMeQueueRouter, namespace: NVMeNamespaceIdentity, limits: NVMeNVMLimits,
         geometry: BlockGeometry, structured: Bool, depth: Int, dma: DMASpace, counters: ExportCounters,
         ended: @escaping (NBDConnection) -> Void) throws(VFIOError) {
        self.fd = fd
        self.owner = owner
        self.router = router
        self.namespace = namespace
        self.limits = limits
        self.geometry = geometry
        self.dma = dma
        self.structured = structured
        self.depth = depth
        self.counters = counters
        self.ended = ended
        data = try dma.allocate(depth * geometry.maxTransfer)
        var accepted = geometry
        accepted.maxTransfer = max(geometry.maxTransfer, Int(min(UInt64(NBD.defaultMaxPayload), geometry.bytes)) / geometry.blockSize * geometry.blockSize)
        self.accepted = accepted
        requests = .allocate(capacity: depth)
        handles = .allocate(capacity: depth)
        commands = .allocate(capacity: depth)
        offsets = .allocate(capacity: depth)
        errors = .allocate(capacity: depth)
        headerLengths = .allocate(capacity: depth)
        dataLengths = .allocate(capacity: depth)
        freeTags = .allocate(capacity: depth)
        sendRing = .allocate(capacity: depth)
        for t in 0..<depth {
            (requests + t).initialize(to: BlockRequest.empty)
            (handles + t).initialize(to: 0)
            (commands + t).initialize(to: 0)
            (offsets + t).initialize(to: 0)
            (errors + t).initialize(to: 0)
            (headerLengths + t).initialize(to: 0)
            (dataLengths + t).initialize(to: 0)
            (freeTags + t).initialize(to: UInt16(depth - 1 - t))
            (sendRing + t).initialize(to: 0)
        }
        freeCount = depth
        replyHeaders = .allocate(byteCount: depth * 32, alignment: 8)
        header = .allocate(byteCount: NBD.requestHeaderSize, alignment: 8)
        iov = .allocate(capacity: 2 * Self.batch)
        message = .allocate(capacity: 1)
        message.initialize(to: msghdr())
    }

    deinit {
        requests.deallocate()
        handles.deallocate()
        commands.deallocate()
        offsets.deallocate()
        errors.deallocate()
        headerLengths.deallocate()
        dataLengths.deallocate()
        freeTags.deallocate()
        sendRing.deallocate()
        replyHeaders.deallocate()
        header.deallocate()
        iov.deallocate()
        message.deallocate()
    }

    // MARK: Control (on the owner thread, through its reactor's run)

    /// Joins the owner's queue pair and watches the socket.
    func attach() throws(VFIOError) {
        let queue = try NVMeBlockQueue(router: router, namespace: namespace, tags: depth, dma: dma, limits: limits, maxTransfer: geometry.maxTransfer)
        queue.onReady = { [unowned self] in self.completionsReady() }
        self.queue = queue
        do {
            watchID = try owner.reactor.watch(fd, events: QueueReactor.readable) { [unowned self] events in self.handle(events) }
        } catch {
            queue.onReady = nil
            queue.leave()
            self.queue = nil
            throw error
        }
        interest = QueueReactor.readable
    }

    /// The server stops: read no more, finish what is on the device, answer, then disconnect.
    func beginStop() {
        guard !finished else { return }
        stopping = true
        closing = true
        settle()
    }

    /// The client did not take its replies in time: drop it (once its device requests finish).
    func abandon() {
        guard !finished else { return }
        markDead()
        settle()
    }

    // MARK: Events

    private func handle(_ events: UInt32) {
        if events & QueueReactor.failed != 0 || (events & QueueReactor.hungUp != 0 && !wantsRead) {
            markDead()
        } else {
            if events & QueueReactor.writable != 0 {
                send()
                resumeParked()
            }
            if events & (QueueReactor.readable | QueueReactor.hungUp) != 0 { receive() }
        }
        settle()
    }

    /// After a poll found this queue's completions, or a free slot for the waiting request.
    private func completionsReady() {
        queue?.reap { tag, result in
            counters.inFlight.subtract(1, ordering: .relaxed)
            answer(Int(tag), error: result == 0 ? 0 : NBD.Error.from(errno: -result))
        }
        startPending()
        send()
        resumeParked()
        if wantsRead { receive() }
        settle()
    }

    private var wantsRead: Bool {
        !closing && !dead && pendingStart < 0 && parkedTag < 0 && (payloadTag >= 0 || freeCount > 0)
    }

    // MARK: Receiving

    /// Reads requests (and write payloads, straight into their tag's buffer) until the socket
    /// has no more or no tag is free.
    private func receive() {
        while wantsRead {
            if payloadTag >= 0 {
                let buffer = tagBuffer(payloadTag)
                var want = payloadLength - payloadGot
                if payloadDiscard { want = min(want, geometry.maxTransfer) }
                let n = recv(fd, payloadDiscard ? buffer : buffer + payloadGot, want, Int32(MSG_DONTWAIT))
                guard received(n) else { return }
                payloadGot += n
                if payloadGot == payloadLength { payloadReceived() }
            } else {
                let n = recv(fd, header + headerGot, NBD.requestHeaderSize - headerGot, Int32(MSG_DONTWAIT))
                guard received(n) else { return }
                headerGot += n
                if headerGot == NBD.requestHeaderSize {
                    headerGot = 0
                    parseHeader()
                }
            }
        }
    }

    /// True when `n` bytes arrived; otherwise notes the end of the stream or a dead socket.
    @inline(__always)
    private func received(_ n: Int) -> Bool {
        if n > 0 { return true }
        if n == 0 {
            closing = true
        } else if errno != EAGAIN, errno != EWOULDBLOCK, errno != EINTR {
            markDead()
        }
        return false
    }

    private func parseHeader() {
        let magic = header.loadBE(at: 0, as: UInt32.self)
        guard magic == NBD.requestMagic else {
            // Garbage: the stream cannot be resynchronised.
            markDead()
            return
        }
        let flags = header.loadBE(at: 4, as: UInt16.self)
        let command = header.loadBE(at: 6, as: UInt16.self)
        let offset = header.loadBE(at: 16, as: UInt64.self)
        let length = header.loadBE(at: 24, as: UInt32.self)
        if command == NBD.Command.disconnect {
            closing = true
            return
        }
        freeCount -= 1
        let tag = Int(freeTags[freeCount])
        handles[tag] = header.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        commands[tag] = command
        offsets[tag] = offset
        var error: UInt32 = 0
        do throws(BlockRequestError) {
            requests[tag] = try decode(command, flags: flags, offset: offset, length: length)
        } catch let refused {
            error = NBD.Error.from(errno: refused.errno)
        }
        if error == 0, stopping { error = NBD.Error.shutdown }
        errors[tag] = error
        if error == 0, requests[tag].bytes > geometry.maxTransfer {
            guard largeTag < 0 else {
                parkedTag = tag
                return
            }
            takeLarge(tag)
        }
        proceed(tag)
    }

    /// Goes on with `tag`'s parsed request: its write payload is read next, or it starts (or
    /// is answered with its error). The request header is still `tag`'s: nothing is read while
    /// a request is parked.
    private func proceed(_ tag: Int) {
        let length = commands[tag] == NBD.Command.write ? Int(header.loadBE(at: 24, as: UInt32.self)) : 0
        if length > 0 {
            payloadTag = tag
            payloadGot = 0
            payloadLength = length
            payloadDiscard = errors[tag] != 0
            return
        }
        if errors[tag] != 0 { answer(tag, error: errors[tag]) } else { start(tag) }
    }

    /// Gives `tag` the large buffer, making it at the first use; a failure is `tag`'s EIO.
    private func takeLarge(_ tag: Int) {
        if large == nil {
            do throws(VFIOError) { large = LargeBuffer(try dma.allocate(accepted.maxTransfer)) } catch {
                errors[tag] = NBD.Error.from(errno: EIO)
                return
            }
        }
        largeTag = tag
    }

    /// The large buffer is free again: the request that waited for it goes on.
    private func resumeParked() {
        guard parkedTag >= 0, largeTag < 0, !dead else { return }
        let tag = parkedTag
        parkedTag = -1
        takeLarge(tag)
        proceed(tag)
    }

    private func payloadReceived() {
        let tag = payloadTag
        payloadTag = -1
        if payloadDiscard { answer(tag, error: errors[tag]) } else { start(tag) }
    }

    /// The request a header describes, checked against the export: NBD's byte ranges must be
    /// whole blocks (EINVAL), a write past the end is ENOSPC, anything else wrong EINVAL.
    @inline(__always)
    private func decode(_ command: UInt16, flags: UInt16, offset: UInt64, length: UInt32) throws(BlockRequestError) -> BlockRequest {
        let operation: BlockRequest.Operation
        switch command {
        case NBD.Command.read: operation = .read
        case NBD.Command.write: operation = .write
        case NBD.Command.flush: operation = .flush
        case NBD.Command.trim: operation = .discard
        case NBD.Command.writeZeroes: operation = .writeZeroes
        default: throw BlockRequestError(errno: EINVAL)
        }
        guard flags & ~(NBD.CommandFlag.fua | NBD.CommandFlag.noHole) == 0 else { throw BlockRequestError(errno: EINVAL) }
        try BlockRequest.permit(operation, geometry: accepted)
        let fua = flags & NBD.CommandFlag.fua != 0
        if operation == .flush { return try BlockRequest(.flush, lba: 0, blocks: 0, geometry: accepted) }
        let size = geometry.bytes
        if operation == .write || operation == .writeZeroes, offset > size || UInt64(length) > size - offset {
            throw BlockRequestError(errno: ENOSPC)
        }
        let blockSize = UInt64(geometry.blockSize)
        guard offset % blockSize == 0, UInt64(length) % blockSize == 0 else { throw BlockRequestError(errno: EINVAL) }
        var request = try BlockRequest(operation, fua: fua, lba: offset / blockSize, blocks: UInt32(UInt64(length) / blockSize), geometry: accepted)
        request.unmap = flags & NBD.CommandFlag.noHole == 0
        return request
    }

    // MARK: The device

    @inline(__always)
    private func tagBuffer(_ tag: Int) -> UnsafeMutableRawPointer {
        if tag == largeTag, let large { return large.buffer.bytes.baseAddress! }
        return data.bytes.baseAddress! + tag * geometry.maxTransfer
    }

    @inline(__always)
    private func tagData(_ tag: Int) -> NVMeDataRange {
        if tag == largeTag, let large { return NVMeDataRange(deviceAddress: large.buffer.deviceAddress, count: accepted.maxTransfer) }
        return NVMeDataRange(deviceAddress: data.deviceAddress + UInt64(tag * geometry.maxTransfer), count: geometry.maxTransfer)
    }

    /// Starts `tag`'s request, or parks it until the shared pair has a free slot.
    private func start(_ tag: Int) {
        guard let queue else { return }
        guard queue.canStart else {
            pendingStart = tag
            queue.waitingForRoom = true
            return
        }
        requests[tag].tag = UInt16(tag)
        requests[tag].data = tagData(tag)
        do throws(BlockRequestError) {
            try queue.start(requests[tag])
            counters.inFlight.add(1, ordering: .relaxed)
        } catch {
            answer(tag, error: NBD.Error.from(errno: error.errno))
        }
    }

    private func startPending() {
        guard pendingStart >= 0, let queue, queue.canStart else { return }
        let tag = pendingStart
        pendingStart = -1
        queue.waitingForRoom = false
        if stopping { answer(tag, error: NBD.Error.shutdown) } else { start(tag) }
    }

    // MARK: Replies

    /// Counts `tag`'s request and queues its reply (or frees the tag when no one will read it).
    private func answer(_ tag: Int, error: UInt32) {
        let request = requests[tag]
        counters.count(request.operation, bytes: UInt64(request.blocks) * UInt64(geometry.blockSize), failed: error != 0)
        guard !dead else {
            release(tag)
            return
        }
        let h = replyHeaders + tag * 32
        let isRead = commands[tag] == NBD.Command.read
        let length = Int(request.bytes)
        if structured {
            h.storeBE(NBD.structuredReplyMagic, at: 0)
            h.storeBE(NBD.ReplyType.flagDone, at: 4)
            h.storeBytes(of: handles[tag], toByteOffset: 8, as: UInt64.self)
            if error != 0 {
                h.storeBE(NBD.ReplyType.error, at: 6)
                h.storeBE(UInt32(6), at: 16)
                h.storeBE(error, at: 20)
                h.storeBE(UInt16(0), at: 24)
                headerLengths[tag] = 26
                dataLengths[tag] = 0
            } else if isRead {
                h.storeBE(NBD.ReplyType.offsetData, at: 6)
                h.storeBE(UInt32(8 + length), at: 16)
                h.storeBE(offsets[tag], at: 20)
                headerLengths[tag] = 28
                dataLengths[tag] = length
            } else {
                h.storeBE(NBD.ReplyType.none, at: 6)
                h.storeBE(UInt32(0), at: 16)
                headerLengths[tag] = 20
                dataLengths[tag] = 0
            }
        } else {
            h.storeBE(NBD.simpleReplyMagic, at: 0)
            h.storeBE(error, at: 4)
            h.storeBytes(of: handles[tag], toByteOffset: 8, as: UInt64.self)
            headerLengths[tag] = 16
            dataLengths[tag] = isRead && error == 0 ? length : 0
        }
        sendRing[(sendHead + sendCount) % depth] = UInt16(tag)
        sendCount += 1
    }

    /// Sends queued replies, several per system call, until the socket would block.
    private func send() {
        while sendCount > 0, !dead {
            var k = 0
            for i in 0..<min(sendCount, Self.batch) {
                let tag = Int(sendRing[(sendHead + i) % depth])
                let skip = i == 0 ? sentBytes : 0
                let headerLength = headerLengths[tag]
                if skip < headerLength {
                    iov[k] = iovec(iov_base: replyHeaders + tag * 32 + skip, iov_len: headerLength - skip)
                    k += 1
                }
                let dataSkip = max(0, skip - headerLength)
                if dataLengths[tag] > dataSkip {
                    iov[k] = iovec(iov_base: tagBuffer(tag) + dataSkip, iov_len: dataLengths[tag] - dataSkip)
                    k += 1
                }
            }
            message.pointee.msg_iov = iov
            message.pointee.msg_iovlen = k
            let n = sendmsg(fd, message, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if n < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN, errno != EWOULDBLOCK { markDead() }
                return
            }
            var sent = n
            while sent > 0 {
                let tag = Int(sendRing[sendHead])
                let remaining = headerLengths[tag] + dataLengths[tag] - sentBytes
                if sent < remaining {
                    sentBytes += sent
                    break
                }
                sent -= remaining
                sentBytes = 0
                sendHead = sendHead + 1 == depth ? 0 : sendHead + 1
                sendCount -= 1
                release(tag)
            }
        }
    }

    @inline(__always)
    private func release(_ tag: Int) {
        if tag == largeTag { largeTag = -1 }
        freeTags[freeCount] = UInt16(tag)
        freeCount += 1
    }

    // MARK: Ending

    /// The socket is unusable: its watch ends at once (a hung-up socket stays readable), queued
    /// replies are dropped, and the connection ends once the device has finished its requests.
    private func markDead() {
        guard !dead else { return }
        dead = true
        closing = true
        if watchID >= 0 {
            owner.reactor.unwatch(watchID, fd: fd)
            watchID = -1
        }
        while sendCount > 0 {
            release(Int(sendRing[sendHead]))
            sendHead = sendHead + 1 == depth ? 0 : sendHead + 1
            sendCount -= 1
        }
        sentBytes = 0
    }

    /// Updates what the socket is watched for, and ends the connection when nothing is left.
    private func settle() {
        guard !finished else { return }
        if closing, payloadTag >= 0 {
            // The client left inside a write's payload: that request never started.
            release(payloadTag)
            payloadTag = -1
        }
        if dead, pendingStart >= 0 {
            release(pendingStart)
            pendingStart = -1
            queue?.waitingForRoom = false
        }
        if dead, parkedTag >= 0 {
            release(parkedTag)
            parkedTag = -1
        }
        if watchID >= 0 {
            let wanted = (wantsRead ? QueueReactor.readable : 0) | (sendCount > 0 ? QueueReactor.writable : 0)
            if wanted != interest {
                do {
                    try owner.reactor.modify(watchID, fd: fd, events: wanted)
                    interest = wanted
                } catch {
                    markDead()
                }
            }
        }
        let outstanding = queue?.outstanding ?? 0
        guard closing, outstanding == 0, pendingStart < 0, parkedTag < 0, sendCount == 0 else { return }
        end()
    }

    private func end() {
        finished = true
        if watchID >= 0 {
            owner.reactor.unwatch(watchID, fd: fd)
            watchID = -1
        }
        if let queue {
            queue.onReady = nil
            queue.leave()
        }
        queue = nil
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        counters.clients.subtract(1, ordering: .relaxed)
        withExtendedLifetime(self) { ended(self) }
    }
}

/// The buffer of requests over the advertised largest (one per connection, made at first use).
private final class LargeBuffer {
    let buffer: DMABuffer
    init(_ buffer: consuming DMABuffer) { self.buffer = buffer }
}

extension BlockRequest {
    /// A placeholder for a tag's request before its first use.
    static let empty = try! BlockRequest(.flush, lba: 0, blocks: 0, geometry: BlockGeometry(blockSize: 512, blocks: 1, maxTransfer: 512, volatileWriteCache: false))
}
