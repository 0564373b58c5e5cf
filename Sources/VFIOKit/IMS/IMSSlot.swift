/// One allocated slot of an ``IMSDomain``: its index in the store and the tag that is its
/// message's data. A handle of a freed slot is stale: the domain refuses it, and a message the
/// device still sends with the old tag is dropped, never delivered to the slot's next owner.
public struct IMSSlot: Sendable, Hashable, CustomStringConvertible {
    /// The slot's index in the store, below the domain's ``IMSDomain/capacity``; reused after a free.
    public let index: Int
    /// The data of the slot's message, fresh for each allocation of the index.
    public let tag: UInt32

    /// `IMS slot 3 (tag 0x1a)`.
    public var description: String { "IMS slot \(index) (tag 0x\(String(tag, radix: 16)))" }
}

/// What runs when a slot fires: on the domain's event loop thread (or the polling thread), one
/// call per delivery, with the slot that fired. One handler may serve many slots.
public final class IMSHandler: Sendable {
    let run: @Sendable (IMSSlot) -> Void

    /// A handler that calls `run` once per delivery.
    public init(_ run: @escaping @Sendable (IMSSlot) -> Void) { self.run = run }
}
