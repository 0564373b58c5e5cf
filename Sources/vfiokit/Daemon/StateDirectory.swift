#if canImport(Glibc)
import Glibc
#endif
import VFIODaemon

/// Where the daemon keeps its lock, socket and journal. One well-known place per host:
/// `/run/vfiokit/daemon`, the packaged unit's `RuntimeDirectory=`; for a user who cannot write
/// there, `$XDG_RUNTIME_DIR/vfiokit`, else `/tmp/vfiokit-UID`. `vfiokit status` searches them
/// in that order. `VFIOKIT_STATE_DIR` names another directory: a separate daemon, which only
/// `vfiokit status` with the same variable finds.
enum StateDirectory {
    /// The packaged unit's runtime directory (`RuntimeDirectory=vfiokit/daemon`).
    static let system = "/run/vfiokit/daemon"

    /// The directory `vfiokit run` uses.
    static func forDaemon() -> String {
        if let fromEnvironment = environment("VFIOKIT_STATE_DIR") { return fromEnvironment }
        return wellKnown.first(where: usable) ?? wellKnown.last!
    }

    /// The directories `vfiokit status` looks in, in order.
    static func forStatus() -> [String] {
        environment("VFIOKIT_STATE_DIR").map { [$0] } ?? wellKnown
    }

    /// Throws ``DaemonError/alreadyRunning(pid:lock:)`` when a daemon holds the lock of
    /// `directory` or, for a well-known directory, of any other well-known one (another user's
    /// fallback included): a daemon started by hand is refused while the service runs, and
    /// the reverse. Checked before anything is printed or opened; the lock itself is taken at
    /// start.
    static func refuseWhenADaemonRuns(besides directory: String) throws(DaemonError) {
        var directories = [directory]
        if wellKnown.contains(directory) { directories += [system] + othersFallbacks() }
        for dir in directories {
            if let pid = DaemonLock.holder(stateDirectory: dir), pid != getpid() {
                throw .alreadyRunning(pid: pid, lock: DaemonLock.path(in: dir))
            }
        }
    }

    private static var wellKnown: [String] {
        var dirs = [system]
        if let runtime = environment("XDG_RUNTIME_DIR") { dirs.append(runtime + "/vfiokit") }
        dirs.append("/tmp/vfiokit-\(getuid())")
        return dirs
    }

    /// Every user's fallback directories this process can see: `/run/user/UID/vfiokit` and
    /// `/tmp/vfiokit-UID` (a UID in digits: `/tmp/vfiokit-state-…` is not one).
    private static func othersFallbacks() -> [String] {
        ["/run/user/*/vfiokit", "/tmp/vfiokit-*"].flatMap { pattern -> [String] in
            var matches = glob_t()
            defer { globfree(&matches) }
            guard glob(pattern, GLOB_ONLYDIR, nil, &matches) == 0 else { return [] }
            return (0..<Int(matches.gl_pathc)).compactMap { matches.gl_pathv[$0].map { String(cString: $0) } }
        }.filter { path in
            let uid =
                path.hasPrefix("/tmp/") ? path.dropFirst("/tmp/vfiokit-".count) : path.dropFirst("/run/user/".count).prefix { $0 != "/" }
            return !uid.isEmpty && uid.allSatisfy { $0.isASCII && $0.isNumber }
        }
    }

    /// True when the directory is writable, or can be made: its nearest existing ancestor is writable.
    private static func usable(_ dir: String) -> Bool {
        var path = dir
        while access(path, F_OK) != 0 {
            guard let slash = path.lastIndex(of: "/") else { return false }
            path = slash == path.startIndex ? "/" : String(path[..<slash])
        }
        return access(path, W_OK) == 0
    }

    private static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}
