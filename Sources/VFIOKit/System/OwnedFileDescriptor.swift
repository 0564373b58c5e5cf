import SystemPackage

/// A file descriptor with exactly one owner, who is responsible for closing it.
///
/// `~Copyable`, so the descriptor cannot be closed twice or used by a second owner: it is
/// borrowed for calls (``rawValue``), ended by ``close()``, which reports close(2)'s error as a
/// ``VFIOError`` naming the file, or handed to a new owner by ``release()``.
///
/// Dropping an unclosed one closes it in `deinit` as a last resort, ignoring the error: that
/// is for the error paths of a set-up, where the error already thrown is the one to report,
/// and Linux releases the descriptor even when close(2) fails. Everything that owns a
/// descriptor for longer closes it with ``close()`` in its own explicit `close`.
public struct OwnedFileDescriptor: ~Copyable, Sendable {
    /// The descriptor, for calls made while this value owns it (-1 once given up).
    public private(set) var rawValue: FileDescriptor
    /// What the file is, for the error of a failed close: `/dev/vfio/12`, `event loop's epoll set`.
    public let name: String
    private let system: any SystemCalls

    /// Takes ownership of `fd`, opened through `system`.
    public init(_ fd: FileDescriptor, name: String, system: any SystemCalls) {
        rawValue = fd
        self.name = name
        self.system = system
    }

    /// Opens `path` (open(2) with `flags` and `O_CLOEXEC`) and owns the result.
    public static func open(_ path: String, _ flags: Int32, system: any SystemCalls) throws(VFIOError) -> OwnedFileDescriptor {
        let fd = try attempt(SystemCall("open", path: path)) { () throws(Errno) in try system.open(path, flags) }
        return OwnedFileDescriptor(fd, name: path, system: system)
    }

    /// close(2), once. The descriptor is gone afterwards even when an error is reported.
    public consuming func close() throws(VFIOError) {
        let fd = rawValue
        rawValue = FileDescriptor(rawValue: -1)
        try attempt(SystemCall("close", detail: "\(name) (fd \(fd.rawValue))")) { () throws(Errno) in try system.close(fd) }
    }

    /// Hands the descriptor to a new owner without closing it.
    public consuming func release() -> FileDescriptor {
        let fd = rawValue
        rawValue = FileDescriptor(rawValue: -1)
        return fd
    }

    /// The last resort (see the type's documentation): the error is ignored because there is
    /// no one to report it to, and the descriptor is released all the same.
    deinit { if rawValue.rawValue >= 0 { try? system.close(rawValue) } }
}
