/// The DMA segments of one request (an iovec of IOVA ranges), in memory allocated once — one
/// list per request tag, say — and refilled for each request: appending allocates nothing.
///
/// The async block API borrows the list for the whole request, so its storage outlives the
/// owner thread's reading it; the driver turns the segments into PRPs or an SGL in the queue
/// slot's own list pages (``NVMeQueuePair/submit(_:segments:mode:)``).
public struct NVMeSegments: ~Copyable, @unchecked Sendable {
    private let storage: UnsafeMutablePointer<NVMeDataRange>
    public let capacity: Int
    public private(set) var count = 0

    /// An empty list with room for `capacity` segments.
    public init(capacity: Int) {
        precondition(capacity >= 1, "a segment list holds at least one segment")
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit { storage.deallocate() }

    /// Adds a segment; throws when the list is full.
    public mutating func append(_ range: NVMeDataRange) throws(NVMeError) {
        guard count < capacity else { throw .invalidArgument("the segment list is full (\(capacity) segments): make it larger") }
        (storage + count).initialize(to: range)
        count += 1
    }

    public mutating func removeAll() { count = 0 }

    public subscript(_ index: Int) -> NVMeDataRange {
        precondition(index >= 0 && index < count, "segment \(index) of \(count)")
        return storage[index]
    }

    /// The segments, valid while the list is neither changed nor gone.
    public var ranges: UnsafeBufferPointer<NVMeDataRange> { UnsafeBufferPointer(start: storage, count: count) }

    /// Bytes in all the segments together.
    public var byteCount: Int { ranges.reduce(0) { $0 + $1.count } }
}

/// How a command's data is described to the controller.
public enum NVMeTransferMode: Sendable, Equatable {
    /// PRPs where the segments allow them, else an SGL where the controller takes SGLs.
    case automatic
    /// Physical Region Page entries (PRP1, PRP2 and chained PRP list pages).
    case prp
    /// A Scatter Gather List: one Data Block descriptor, or a Last Segment of them.
    case sgl
}
