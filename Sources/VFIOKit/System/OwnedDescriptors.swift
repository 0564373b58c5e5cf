#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Files opened during a multi-step set-up, closed together unless the set-up succeeds.
struct OwnedDescriptors: ~Copyable {
    let system: any SystemCalls
    private var fds: [FileDescriptor] = []

    init(system: any SystemCalls) { self.system = system }

    mutating func open(_ path: String) throws(VFIOError) -> FileDescriptor {
        let fd = try attempt(SystemCall("open", path: path)) { () throws(Errno) in try system.open(path, O_RDWR) }
        fds.append(fd)
        return fd
    }

    mutating func adopt(_ fd: FileDescriptor) { fds.append(fd) }
    mutating func forget(_ fd: FileDescriptor) { fds.removeAll { $0 == fd } }
    /// The set-up succeeded: the files now belong to their users.
    mutating func release() { fds.removeAll() }

    /// The set-up failed: the error it throws is the one reported, and Linux releases each
    /// descriptor even when close reports an error.
    deinit { for fd in fds.reversed() { try? system.close(fd) } }
}
