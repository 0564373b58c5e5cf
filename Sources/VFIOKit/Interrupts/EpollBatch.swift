/// What one `epoll_wait` fills, allocated once when a loop thread starts so that waiting and
/// dispatch allocate nothing: the events and `epoll_data` of up to ``capacity`` ready files, and
/// 8 bytes to read an eventfd's or timerfd's counter into. The thread that made it calls
/// ``deallocate()`` as it ends. Shared by ``EventLoop`` and ``QueueReactor``.
struct EpollBatch {
    static let capacity: Int32 = 64
    let events = UnsafeMutablePointer<UInt32>.allocate(capacity: Int(capacity))
    let data = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(capacity))
    let counter = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)

    func deallocate() {
        events.deallocate()
        data.deallocate()
        counter.deallocate()
    }
}
