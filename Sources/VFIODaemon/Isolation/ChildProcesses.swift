#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import SystemPackage

/// Child processes, started and waited for on one thread of their own that lives until
/// ``stop()``: Linux delivers a child's `PR_SET_PDEATHSIG` signal when the *thread* that
/// started it ends, so a child started from a pool thread that retires would be stopped for
/// nothing. Each child gets every signal's default action and an empty signal mask (the
/// parent's ignored signals are not inherited) and a process group of its own, so that a
/// terminal's Ctrl-C reaches only the parent, which stops its children in order.
final class ChildProcesses: Sendable {
    private struct Request {
        var executable: String
        var arguments: [String]
        var onExit: @Sendable (_ waitStatus: Int32) -> Void
        var reply: @Sendable (Result<pid_t, DaemonError>) -> Void
    }

    private struct State {
        var requests: [Request] = []
        var running: [pid_t: @Sendable (Int32) -> Void] = [:]
        var stopping = false
    }
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init() throws(DaemonError) {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let children = Unmanaged<ChildProcesses>.fromOpaque(raw!).takeRetainedValue()
                children.serve()
                return nil
            }, box)
        guard rc == 0 else {
            Unmanaged<ChildProcesses>.fromOpaque(box).release()
            throw .systemCall(operation: "start the thread that runs the worker processes", errno: Errno(rawValue: rc))
        }
        pthread_detach(thread)
    }

    /// Starts `executable` with `arguments` (after argv[0]) and this process's environment;
    /// `onExit` gets its wait status, on this object's thread, once it has ended.
    func spawn(_ executable: String, _ arguments: [String], onExit: @escaping @Sendable (Int32) -> Void) throws(DaemonError) -> pid_t {
        let result = Mutex<Result<pid_t, DaemonError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let accepted = state.withLock { s in
            guard !s.stopping else { return false }
            s.requests.append(
                Request(executable: executable, arguments: arguments, onExit: onExit) { r in
                    result.withLock { $0 = r }
                    done.signal()
                })
            return true
        }
        guard accepted else { throw .setup("the daemon is stopping; no worker process is started") }
        wake.signal()
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// Ends the thread once every child has ended and been reported; starts no more.
    func stop() {
        state.withLock { $0.stopping = true }
        wake.signal()
        finished.wait()
    }

    private func serve() {
        defer { finished.signal() }
        while true {
            _ = wake.wait(timeout: .now() + .milliseconds(100))
            let requests = state.withLock { s in
                defer { s.requests = [] }; return s.requests
            }
            for request in requests {
                let result = Self.start(request.executable, request.arguments)
                if case let .success(pid) = result { state.withLock { $0.running[pid] = request.onExit } }
                request.reply(result)
            }
            let running = state.withLock { Array($0.running.keys) }
            for pid in running {
                var status: Int32 = 0
                guard waitpid(pid, &status, WNOHANG) == pid else { continue }
                let onExit = state.withLock { $0.running.removeValue(forKey: pid) }
                onExit?(status)
            }
            if state.withLock({ $0.stopping && $0.running.isEmpty && $0.requests.isEmpty }) { return }
        }
    }

    private static func start(_ executable: String, _ arguments: [String]) -> Result<pid_t, DaemonError> {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, nil, &attributes, argv, environ)
        guard rc == 0 else { return .failure(.systemCall(operation: "start a worker process (\(executable))", errno: Errno(rawValue: rc))) }
        return .success(pid)
    }
}
