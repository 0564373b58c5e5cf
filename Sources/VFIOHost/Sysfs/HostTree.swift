#if canImport(Glibc)
import Glibc
#endif
import SystemPackage
import VFIOKit

/// The host's kernel-provided files — sysfs under `sys/`, procfs under `proc/`, device nodes
/// under `dev/` — all found below one configurable root.
///
/// Production uses ``system`` (root `/`, the real system calls). Tests build a whole fake host
/// in a temporary directory and pass its path, so nothing here assumes it talks to the kernel.
/// Every access goes through the framework's ``SystemCalls`` seam.
///
/// Paths given to the methods are relative to the root and are built from ``SysfsLayout``'s
/// paths, fixed attribute names and validated values (``PCIAddress``, ``DriverName``,
/// ``KernelName``, numbers), so no user text is ever spliced into a path.
public struct HostTree: Sendable {
    /// The directory that plays the part of `/`, without a trailing slash (empty for `/`).
    public let root: String
    public let system: any SystemCalls

    /// The real host: root `/`, real system calls.
    public static let system = HostTree(root: "/", system: HostSystemCalls.shared)

    public init(root: String, system: any SystemCalls = HostSystemCalls.shared) {
        var root = root
        while root.hasSuffix("/") { root.removeLast() }
        self.root = root
        self.system = system
    }

    /// True when this tree is the machine's own `/`.
    public var isSystemRoot: Bool { root.isEmpty }

    /// The absolute path of a root-relative path.
    public func absolute(_ path: String) -> String { root + "/" + path }

    /// Reads a text attribute, trailing newlines removed.
    public func readText(_ path: String) throws(HostAccessError) -> String {
        do { return try system.readText(absolute(path)) } catch { throw .unreadable(path: absolute(path), error) }
    }

    /// Reads a text attribute, or nil when it does not exist.
    public func readTextIfPresent(_ path: String) throws(HostAccessError) -> String? {
        do { return try system.readText(absolute(path)) } catch .noSuchFileOrDirectory { return nil } catch {
            throw .unreadable(path: absolute(path), error)
        }
    }

    /// Reads up to `limit` bytes of a binary attribute such as `config`; short when the kernel
    /// lets this process read less (unprivileged readers get 64 bytes of config space).
    public func readBytes(_ path: String, limit: Int) throws(HostAccessError) -> [UInt8] {
        let full = absolute(path)
        do {
            let fd = try system.open(full, O_RDONLY)
            // Cannot fail in a way that matters: a read-only attribute has nothing to flush.
            defer { try? system.close(fd) }
            var bytes: [UInt8] = []
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { chunk.deallocate() }
            while bytes.count < limit {
                let n = try system.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: chunk[..<min(4096, limit - bytes.count)]))
                if n == 0 { break }
                bytes += chunk[..<n]
            }
            return bytes
        } catch { throw .unreadable(path: full, error) }
    }

    /// Writes a value to an attribute in one write(2), the way the kernel expects.
    public func writeText(_ path: String, _ text: String) throws(HostAccessError) {
        do { try system.writeText(absolute(path), text) } catch { throw .unwritable(path: absolute(path), value: text, error) }
    }

    /// The target of a symlink, or nil when the link does not exist.
    public func readLinkIfPresent(_ path: String) throws(HostAccessError) -> String? {
        do { return try system.readLink(absolute(path)) } catch .noSuchFileOrDirectory { return nil } catch {
            throw .unreadable(path: absolute(path), error)
        }
    }

    /// The last component of a symlink's target (a driver's or group's name), or nil when the
    /// link does not exist.
    public func linkName(_ path: String) throws(HostAccessError) -> String? {
        guard let target = try readLinkIfPresent(path) else { return nil }
        return String(target.split(separator: "/").last ?? "")
    }

    /// The root-relative path a symlink points at, with `..` resolved lexically; nil when the
    /// link does not exist. Resolves one level, which is what sysfs's bus and class links need:
    /// their targets are real directories under `sys/devices`.
    public func resolveLink(_ path: String) throws(HostAccessError) -> String? {
        guard let target = try readLinkIfPresent(path) else { return nil }
        let base = target.hasPrefix("/") ? [] : path.split(separator: "/").dropLast()
        var parts: [Substring] = []
        for part in base + target.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return parts.joined(separator: "/")
    }

    /// Linux's O_PATH, which Glibc's Swift module leaves out: opens a name without reading it,
    /// so even write-only attributes can be tested for existence.
    private static let openPathOnly: Int32 = 0o1000_0000

    /// The names in a directory, sorted; empty when the directory does not exist.
    public func list(_ path: String) throws(HostAccessError) -> [String] {
        do { return try system.listDirectory(absolute(path)).sorted() } catch .noSuchFileOrDirectory { return [] } catch {
            throw .unreadable(path: absolute(path), error)
        }
    }

    /// Whether a file, directory or symlink target exists.
    public func exists(_ path: String) -> Bool {
        guard let fd = try? system.open(absolute(path), Self.openPathOnly) else { return false }
        // Cannot fail: an O_PATH descriptor has nothing to flush.
        try? system.close(fd)
        return true
    }
}
