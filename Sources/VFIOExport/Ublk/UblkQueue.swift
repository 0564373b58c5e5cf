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
/// ``serve(_:)`` runs on the queue's own thread, which is the only one that touches the ring,
/// the tags and the block queue: every tag fetches (UBLK_IO_FETCH_REQ), and each request that
/// arrives is decoded, started on the block queue and, once it completes, committed with its
/// result while the tag fetches again (UBLK_IO_COMMIT_AND_FETCH_REQ). The loop busy-polls while
/// block requests are outstanding and sleeps in io_uring otherwise; it takes no lock and
/// allocates nothing per request. It returns once every tag has been aborted by the kernel
/// (STOP_DEV) or ``wake()`` was called before the device started.
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
    /// Per tag: the kernel aborted the tag (it will not fetch again).
    private let aborted: UnsafeMutablePointer<Bool>
    /// Signalled to end ``serve(_:)`` early.
    private let stopEvent: Int32
    /// Requests committed, and of them those answered with an error.
    let served = Atomic<UInt64>(0)
    let failed = Atomic<UInt64>(0)

    static let stopUserData = UInt64.max
    /// FETCH_REQ and COMMIT_AND_FETCH_REQ, ioctl-encoded or plain as the kernel takes them.
    private let fetchOp: UInt32
    private let commitOp: UInt32

    init(index: Int, depth: Int, geometry: BlockGeometry, charFD: Int32, ioctlEncoded: Bool, data: consuming DMABuffer) throws(UblkError) {
        self.index = index
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
        stopEvent = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard stopEvent >= 0 else {
            munmap(map, descriptorLength)
            throw .system(operation: "eventfd for ublk queue \(index)", errno: errno)
        }
        do {
            ring = try UblkRing(entries: depth + 1, flags: 0, purpose: "ublk queue \(index)")
        } catch {
            munmap(map, descriptorLength)
            close(stopEvent)
            throw error
        }
        results = .allocate(capacity: depth)
        results.initialize(repeating: 0, count: depth)
        aborted = .allocate(capacity: depth)
        aborted.initialize(repeating: false, count: depth)
    }

    deinit {
        release()
        close(stopEvent)
        results.deallocate()
        aborted.deallocate()
    }

    /// Closes the ring and unmaps the descriptors: what holds /dev/ublkcN besides its file, so
    /// the kernel can free the device. Only once ``serve(_:fetched:)`` has returned.
    func release() {
        ring.close()
        if descriptorLength > 0, !released {
            munmap(descriptors, descriptorLength)
            released = true
        }
    }
    private var released = false

    /// Ends ``serve(_:)`` at its next wake-up, for a device that never started.
    func wake() {
        var one: UInt64 = 1
        _ = write(stopEvent, &one, 8)
    }

    @inline(__always)
    private func bufferAddress(_ tag: Int) -> UInt64 {
        UInt64(UInt(bitPattern: data.bytes.baseAddress! + tag * geometry.maxTransfer))
    }

    /// Serves requests from `blockQueue` until the kernel aborts every tag (or ``wake()``),
    /// calling `fetched` once every tag's fetch is submitted (the device may start then).
    /// Throws when the first fetches cannot be submitted.
    func serve(_ blockQueue: any BlockQueue, fetched: () -> Void) throws(UblkError) {
        let q = UInt16(index)
        for tag in 0..<depth {
            _ = curing_prep_ublk_io(ring.ring, charFD, fetchOp, q, UInt16(tag), 0, bufferAddress(tag))
        }
        _ = curing_prep_poll(ring.ring, stopEvent, Self.stopUserData)
        let rc = ring.submit()
        guard rc >= 0 else { throw .system(operation: "submitting ublk queue \(index)'s fetches", errno: -rc) }
        fetched()
        var live = depth
        var pending = 0
        while live > 0 {
            // Requests from the kernel.
            while let completion = ring.peek() {
                if completion.userData == Self.stopUserData { return }
                let tag = Int(completion.userData)
                guard completion.result == 0 else {
                    // An abort (-ENODEV, the device is stopping) or a refused command: the tag is done.
                    if !aborted[tag] { aborted[tag] = true; live -= 1 }
                    continue
                }
                pending += handle(tag, blockQueue)
            }
            // Completions from the block queue.
            blockQueue.reap { tag, result in
                commit(Int(tag), result == 0 ? results[Int(tag)] : result)
                pending += 1
            }
            if pending > 0 {
                _ = ring.submit()
                pending = 0
            }
            if blockQueue.outstanding == 0, live > 0 {
                let rc = ring.submitAndWait()
                if rc < 0, rc != -EINTR { return }
            }
        }
    }

    /// Decodes tag `tag`'s request and starts it, or commits its error; returns the SQEs prepared.
    @inline(__always)
    private func handle(_ tag: Int, _ blockQueue: any BlockQueue) -> Int {
        let descriptor = descriptors.assumingMemoryBound(to: cublk_io_desc.self) + tag
        do throws(BlockRequestError) {
            var request = try BlockRequest(descriptor, geometry: geometry)
            results[tag] = request.successResult
            request.tag = UInt16(tag)
            request.data = NVMeDataRange(deviceAddress: data.deviceAddress + UInt64(tag * geometry.maxTransfer), count: geometry.maxTransfer)
            try blockQueue.start(request)
            return 0
        } catch {
            commit(tag, -error.errno)
            return 1
        }
    }

    /// Commits `result` for `tag` and fetches its next request in the same command.
    @inline(__always)
    private func commit(_ tag: Int, _ result: Int32) {
        served.add(1, ordering: .relaxed)
        if result < 0 { failed.add(1, ordering: .relaxed) }
        _ = curing_prep_ublk_io(
            ring.ring, charFD, commitOp, UInt16(index), UInt16(tag), result, bufferAddress(tag))
    }
}
