#if canImport(Glibc)
import Glibc
#endif
import CUring
import Synchronization
import VFIODrivers
import VFIOKit

/// One ublk queue: its io_uring, the kernel's descriptor array for its tags (mapped read-only
/// from /dev/ublkcN), and one DMA buffer per tag that the kernel copies request data into and
/// out of and the controller reads and writes directly.
///
/// The queue lives on its device queue's owner thread (``attach(_:reactor:)``): the ring's file
/// is one more watch in the owner's epoll set, every tag's FETCH_REQ is issued there (ublk_drv
/// binds a queue to the task that fetched), and from then on that thread alone decodes each
/// request, starts it on the block queue, takes its completion when the owner's poll (a polled
/// queue, busy while commands are outstanding) or CQ interrupt reports it, and commits the
/// result while the tag fetches again (COMMIT_AND_FETCH_REQ). What one wake-up prepares goes to
/// the kernel in one io_uring_enter. Nothing on that path takes a lock, allocates or retains.
final class UblkQueue: @unchecked Sendable {
    let index: Int
    let depth: Int
    let geometry: BlockGeometry
    private let charFD: Int32
    private let ring: UblkRing
    private let descriptors: UnsafeMutableRawPointer
    private let descriptorLength: Int
    private let data: DMABuffer
    /// Per tag: the result to commit on success (bytes for reads and writes).
    private let results: UnsafeMutablePointer<Int32>
    /// Tags whose request waits for room on a shared device queue, oldest first (a ring).
    private let waiting: UnsafeMutablePointer<UInt16>
    private var waitingHead = 0, waitingCount = 0
    /// SQEs prepared and not yet submitted.
    private var prepared = 0
    /// The block queue and the ring's watch while attached (owner thread; control path).
    private var blockQueue: (any UblkBlockQueue)?
    private var watch: Int?
    /// The device's counters, shared by its queues.
    private let counters: ExportCounters
    /// Per tag on the device queue: its request's kind and bytes, for the counters at commit;
    /// nil for a tag refused before it started.
    private let started: UnsafeMutablePointer<(operation: BlockRequest.Operation, bytes: UInt64)?>

    /// FETCH_REQ and COMMIT_AND_FETCH_REQ, ioctl-encoded or plain as the kernel takes them.
    private let fetchOp: UInt32
    private let commitOp: UInt32

    init(
        index: Int, depth: Int, geometry: BlockGeometry, charFD: Int32, ioctlEncoded: Bool, data: consuming DMABuffer,
        counters: ExportCounters
    ) throws(UblkError) {
        self.index = index
        self.counters = counters
        fetchOp = ioctlEncoded ? CUBLK_U_IO_FETCH_REQ : CUBLK_IO_FETCH_REQ
        commitOp = ioctlEncoded ? CUBLK_U_IO_COMMIT_AND_FETCH_REQ : CUBLK_IO_COMMIT_AND_FETCH_REQ
        self.depth = depth
        self.geometry = geometry
        self.charFD = charFD
        self.data = data
        descriptorLength = Int(cublk_descriptor_length(UInt32(depth)))
        let map = mmap(nil, descriptorLength, PROT_READ, MAP_SHARED | MAP_POPULATE, charFD, off_t(cublk_descriptor_offset(UInt32(index))))
        guard let map, map != MAP_FAILED else {
            throw .system(operation: "mapping ublk queue \(index)'s request descriptors", errno: errno)
        }
        descriptors = map
        do {
            // Plain flags: the kernel hands each request over as task work on the owner thread,
            // signalling it (TWA_SIGNAL) so that a thread asleep in epoll wakes and finds the
            // ring readable. (COOP/DEFER_TASKRUN would leave that work until the thread enters
            // io_uring itself, which a thread that sleeps in epoll does not.)
            ring = try UblkRing(entries: depth + 1, flags: 0, purpose: "ublk queue \(index)")
        } catch {
            munmap(map, descriptorLength)
            throw error
        }
        results = .allocate(capacity: depth)
        results.initialize(repeating: 0, count: depth)
        waiting = .allocate(capacity: depth)
        waiting.initialize(repeating: 0, count: depth)
        started = .allocate(capacity: depth)
        started.initialize(repeating: nil, count: depth)
    }

    deinit {
        release()
        results.deallocate()
        waiting.deallocate()
        started.deallocate()
    }

    /// On `reactor`'s thread (the owner of device queue ``index``): opens the block queue,
    /// watches the ring and issues every tag's fetch. Throws when any of it fails, having
    /// undone what it did (but not the fetches: ``detach(_:reactor:)`` cancels them).
    func attach(_ backend: any UblkBackend, reactor: QueueReactor) throws(UblkError) {
        let queue = try backend.openQueue(index)
        queue.onReady = { [unowned(unsafe) self, unowned(unsafe) queue] in self.blockQueueReady(queue) }
        blockQueue = queue
        do throws(VFIOError) {
            watch = try reactor.watch(ring.fd, events: QueueReactor.readable) { [unowned(unsafe) self] _ in
                self.ringReady(queue)
            }
        } catch {
            detach(backend, reactor: reactor)
            throw .system(operation: "watching ublk queue \(index)'s io_uring on its NVMe queue's owner thread (\(error))", errno: EIO)
        }
        for tag in 0..<depth {
            _ = curing_prep_ublk_io(ring.ring, charFD, fetchOp, UInt16(index), UInt16(tag), 0, bufferAddress(tag))
        }
        let rc = ring.submit()
        guard rc >= 0 else {
            detach(backend, reactor: reactor)
            throw .system(operation: "submitting ublk queue \(index)'s fetches", errno: -rc)
        }
    }

    /// On the owner thread: ends the ring's watch, closes the block queue, tears the ring down
    /// (cancelling fetches the kernel still holds) and unmaps the descriptors, so the kernel can
    /// free the device. After STOP_DEV (no request in flight) or when the device never started.
    /// Idempotent.
    func detach(_ backend: any UblkBackend, reactor: QueueReactor) {
        if let watch { reactor.unwatch(watch, fd: ring.fd) }
        watch = nil
        if let blockQueue {
            blockQueue.onReady = nil
            backend.closeQueue(blockQueue, index: index)
        }
        blockQueue = nil
        release()
    }

    private func release() {
        ring.close()
        if !released {
            munmap(descriptors, descriptorLength)
            released = true
        }
    }
    private var released = false

    @inline(__always)
    private func bufferAddress(_ tag: Int) -> UInt64 {
        UInt64(UInt(bitPattern: data.bytes.baseAddress! + tag * geometry.maxTransfer))
    }

    // MARK: The owner thread's I/O path

    /// The ring is readable: requests from the kernel (or aborted fetches).
    @inline(__always)
    private func ringReady(_ queue: any UblkBlockQueue) {
        while let completion = ring.peek() {
            let tag = Int(completion.userData)
            guard tag < depth else { continue }
            // UBLK_IO_RES_ABORT (the device is stopping) or a refused command: the tag is done.
            guard completion.result == 0 else { continue }
            if waitingCount > 0 || !queue.canStart {
                wait(tag, queue)
            } else {
                begin(tag, queue)
            }
        }
        flush()
    }

    /// The block queue has finished requests, or room for the waiting ones.
    @inline(__always)
    private func blockQueueReady(_ queue: any UblkBlockQueue) {
        queue.reap { tag, result in
            commit(Int(tag), result == 0 ? results[Int(tag)] : result)
        }
        while waitingCount > 0, queue.canStart {
            let tag = Int(waiting[waitingHead])
            waitingHead = waitingHead + 1 == depth ? 0 : waitingHead + 1
            waitingCount -= 1
            begin(tag, queue)
        }
        queue.waitingForRoom = waitingCount > 0
        flush()
    }

    /// Decodes tag `tag`'s request and starts it, or commits its error.
    @inline(__always)
    private func begin(_ tag: Int, _ queue: any UblkBlockQueue) {
        let descriptor = descriptors.assumingMemoryBound(to: cublk_io_desc.self) + tag
        do throws(BlockRequestError) {
            var request = try BlockRequest(descriptor, geometry: geometry)
            results[tag] = request.successResult
            request.tag = UInt16(tag)
            request.data = NVMeDataRange(
                deviceAddress: data.deviceAddress + UInt64(tag * geometry.maxTransfer), count: geometry.maxTransfer)
            try queue.start(request)
            started[tag] = (request.operation, UInt64(request.blocks) * UInt64(geometry.blockSize))
            counters.inFlight.add(1, ordering: .relaxed)
        } catch {
            started[tag] = nil
            commit(tag, -error.errno)
        }
    }

    /// Keeps `tag` until the device queue has room (its descriptor stays valid until commit).
    private func wait(_ tag: Int, _ queue: any UblkBlockQueue) {
        waiting[(waitingHead + waitingCount) % depth] = UInt16(tag)
        waitingCount += 1
        queue.waitingForRoom = true
    }

    /// Commits `result` for `tag` and fetches its next request in the same command.
    @inline(__always)
    private func commit(_ tag: Int, _ result: Int32) {
        if let request = started[tag] {
            counters.inFlight.subtract(1, ordering: .relaxed)
            counters.count(request.operation, bytes: request.bytes, failed: result < 0)
        } else {
            counters.errors.add(1, ordering: .relaxed)
        }
        if curing_prep_ublk_io(ring.ring, charFD, commitOp, UInt16(index), UInt16(tag), result, bufferAddress(tag)) != 0 {
            // The SQ is full: hand it to the kernel and prepare again.
            flush()
            _ = curing_prep_ublk_io(ring.ring, charFD, commitOp, UInt16(index), UInt16(tag), result, bufferAddress(tag))
        }
        prepared += 1
    }

    /// Submits what was prepared, in one io_uring_enter.
    @inline(__always)
    private func flush() {
        guard prepared > 0 else { return }
        var rc = ring.submit()
        while rc == -EINTR { rc = ring.submit() }
        // On another failure the SQEs stay in the ring and go with the next submission.
        if rc >= 0 { prepared = 0 }
    }
}
