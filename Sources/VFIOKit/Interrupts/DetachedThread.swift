#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Starts a detached thread that runs `body`, the thread the event loop and each queue reactor
/// run on. What `body` captures is held until it returns and let go before `exited` runs, so
/// that whoever waits for `exited` knows the thread holds nothing any more. Throws
/// ``VFIOError/systemCall(operation:errno:)`` naming `purpose` when no thread can be made.
func startDetachedThread(
    for purpose: String, _ body: @escaping @Sendable () -> Void, exited: @escaping @Sendable () -> Void = {}
) throws(VFIOError) {
    let context = Unmanaged.passRetained(DetachedThreadStart(body: body, exited: exited)).toOpaque()
    var id = pthread_t()
    let rc = pthread_create(
        &id, nil,
        { raw in
            let start = Unmanaged<DetachedThreadStart>.fromOpaque(raw!).takeRetainedValue()
            start.body?()
            start.body = nil
            start.exited()
            return nil
        }, context)
    guard rc == 0 else {
        Unmanaged<DetachedThreadStart>.fromOpaque(context).release()
        throw .systemCall(operation: SystemCall("pthread_create", detail: purpose), errno: Errno(rawValue: rc))
    }
    pthread_detach(id)
}

/// What a thread made by ``startDetachedThread(for:_:exited:)`` runs; only that thread touches it.
private final class DetachedThreadStart {
    var body: (@Sendable () -> Void)?
    let exited: @Sendable () -> Void

    init(body: @escaping @Sendable () -> Void, exited: @escaping @Sendable () -> Void) {
        self.body = body
        self.exited = exited
    }
}
