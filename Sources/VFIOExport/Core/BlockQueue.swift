/// The queue a frontend's requests go to: one export queue (a ublk queue, an NBD connection)
/// on one device queue. Only the thread that owns the device queue uses it, so an
/// implementation takes no lock; ``start(_:)`` and ``reap(_:)`` allocate nothing.
public protocol BlockQueue: AnyObject {
    /// Starts `request` (checked against the export's geometry), whose data is
    /// `request.data`. Its result comes back through ``reap(_:)`` under `request.tag`. Throws
    /// the errno to answer with when the request cannot start.
    func start(_ request: BlockRequest) throws(BlockRequestError)
    /// Looks for finished requests and hands each one's tag and result (0 or `-errno`) to
    /// `body`; returns how many.
    @discardableResult
    func reap(_ body: (UInt16, Int32) -> Void) -> Int
    /// Requests started and not yet reaped.
    var outstanding: Int { get }
    /// Whether the device queue has room for another request now (it may be shared).
    var canStart: Bool { get }
}
