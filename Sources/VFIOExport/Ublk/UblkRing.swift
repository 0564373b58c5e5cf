import CUring

/// An io_uring (liburing, behind CUring's opaque ring) and its only owner. Not thread-safe:
/// one thread submits to and reaps from a ring.
final class UblkRing {
    let ring: OpaquePointer
    /// The ring's file, readable while completions wait: what an epoll set watches.
    let fd: Int32
    private var open = true

    /// A ring of `entries` submission entries; `flags` are IORING_SETUP_ flags.
    init(entries: Int, flags: UInt32, purpose: String) throws(UblkError) {
        var error: Int32 = 0
        guard let ring = curing_create(UInt32(entries), flags, &error) else {
            throw .system(operation: "setting up the io_uring for \(purpose) (\(entries) entries)", errno: -error)
        }
        self.ring = ring
        fd = curing_fd(ring)
    }

    deinit { close() }

    /// Tears the ring down, cancelling what is still in flight. Idempotent.
    func close() {
        guard open else { return }
        open = false
        curing_destroy(ring)
    }

    /// Submits what was prepared; returns the count or -errno.
    @inline(__always)
    func submit() -> Int32 { curing_submit(ring) }

    /// The next completion, without waiting.
    @inline(__always)
    func peek() -> (userData: UInt64, result: Int32)? {
        var data: UInt64 = 0
        var res: Int32 = 0
        return curing_peek(ring, &data, &res) == 1 ? (data, res) : nil
    }

    /// Submits what was prepared and waits for one completion (not consuming it); returns
    /// 0 or -errno (-EINTR when a signal came first).
    @inline(__always)
    func submitAndWait() -> Int32 {
        let rc = curing_submit_and_wait(ring)
        return rc < 0 ? rc : 0
    }
}
