#if canImport(Glibc)
import Glibc
#endif
import VFIOHost

/// Where the daemon keeps its lock, socket and journal: `$VFIOKIT_STATE_DIR`, else
/// `/run/vfiokit` (where `vfiokit bind` keeps its records too), else, for a user who cannot
/// write there, `$XDG_RUNTIME_DIR/vfiokit` or `/tmp/vfiokit-UID`.
enum StateDirectory {
    /// The directory `vfiokit run` uses.
    static func forDaemon() -> String {
        if let fromEnvironment = environment("VFIOKIT_STATE_DIR") { return fromEnvironment }
        return candidates.first(where: usable) ?? candidates.last!
    }

    /// The directories `vfiokit status` looks in, in order.
    static func forStatus() -> [String] {
        environment("VFIOKIT_STATE_DIR").map { [$0] } ?? candidates
    }

    private static var candidates: [String] {
        var dirs = [BindingStateStore.defaultDirectory]
        if let runtime = environment("XDG_RUNTIME_DIR") { dirs.append(runtime + "/vfiokit") }
        dirs.append("/tmp/vfiokit-\(getuid())")
        return dirs
    }

    /// True when the directory exists and is writable, or its parent is.
    private static func usable(_ dir: String) -> Bool {
        if access(dir, W_OK) == 0 { return true }
        let parent = String(dir[..<(dir.lastIndex(of: "/") ?? dir.startIndex)])
        return access(dir, F_OK) != 0 && access(parent.isEmpty ? "/" : parent, W_OK) == 0
    }

    private static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}
