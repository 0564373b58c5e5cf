/// One export of one namespace of a hosted NVMe device, as `vfiokit run --export` and a config
/// entry's `exports` list write it, in the style of QEMU's `-blockdev` and `qemu-nbd`:
///
///     nbd                          NBD on a Unix socket in the state directory
///     nbd:/run/vfiokit/ns1.sock    NBD on this Unix socket
///     nbd:127.0.0.1:10809          NBD on this loopback TCP port
///     ublk                         a /dev/ublkbN block device (needs ublk_drv and root)
///
/// followed by options, comma-separated: `namespace=N` (default 1) and `read-only`.
/// `nbd:/run/x.sock,namespace=2,read-only` serves namespace 2 read-only.
public struct ExportSpecification: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable { case nbd, ublk }

    /// Where an NBD export listens.
    public enum Endpoint: Sendable, Equatable {
        /// A Unix socket in the state directory, named for the device and namespace.
        case defaultSocket
        case unixSocket(String)
        case loopback(host: String, port: UInt16)
    }

    public var kind: Kind
    public var namespace: UInt32
    /// NBD only; nil for ublk.
    public var endpoint: Endpoint?
    public var readOnly: Bool

    public init(kind: Kind, namespace: UInt32 = 1, endpoint: Endpoint? = nil, readOnly: Bool = false) {
        self.kind = kind
        self.namespace = namespace
        self.endpoint = kind == .nbd ? endpoint ?? .defaultSocket : nil
        self.readOnly = readOnly
    }

    /// Parses `text` (see the type's comment); `readOnly` makes the export read-only whatever
    /// its options say (`--read-only`). The error names the part that is wrong and the form.
    public init(parsing text: String, readOnly: Bool = false) throws(ExportSpecificationError) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let head = parts[0]
        let colon = head.firstIndex(of: ":")
        let kindName = String(head[..<(colon ?? head.endIndex)])
        guard let kind = Kind(rawValue: kindName) else {
            throw .init(text, "\"\(kindName)\" is not an export protocol: use nbd or ublk")
        }
        let target = colon.map { String(head[head.index(after: $0)...]) }
        let endpoint: Endpoint?
        switch (kind, target) {
        case (.ublk, .some):
            throw .init(text, "ublk takes no socket or port: the kernel names the device /dev/ublkbN")
        case (_, .none):
            endpoint = nil
        case (.nbd, .some(let place)):
            endpoint = try Self.endpoint(place, in: text)
        }
        var namespace: UInt32 = 1
        var readOnly = readOnly
        for option in parts.dropFirst() {
            if option == "read-only" || option == "ro" {
                readOnly = true
            } else if option.hasPrefix("namespace=") || option.hasPrefix("ns=") {
                let value = option[option.index(after: option.firstIndex(of: "=")!)...]
                guard let n = UInt32(value), n >= 1, n != .max else {
                    throw .init(text, "namespace \"\(value)\" is not a namespace ID: use 1 or more")
                }
                namespace = n
            } else {
                throw .init(text, "unknown option \"\(option)\": the options are namespace=N and read-only")
            }
        }
        self.init(kind: kind, namespace: namespace, endpoint: endpoint, readOnly: readOnly)
    }

    private static func endpoint(_ text: String, in spec: String) throws(ExportSpecificationError) -> Endpoint {
        if text.hasPrefix("/") { return .unixSocket(text) }
        guard let colon = text.lastIndex(of: ":") else {
            throw .init(spec, "\"\(text)\" is neither an absolute socket path nor 127.0.0.1:PORT")
        }
        let host = String(text[..<colon])
        guard host == "127.0.0.1" || host == "localhost" else {
            throw .init(spec, "NBD listens on loopback only (no TLS): use 127.0.0.1:PORT, not \(host)")
        }
        guard let port = UInt16(text[text.index(after: colon)...]), port > 0 else {
            throw .init(spec, "\"\(text[text.index(after: colon)...])\" is not a TCP port (1-65535)")
        }
        return .loopback(host: "127.0.0.1", port: port)
    }

    public var description: String {
        var text = kind.rawValue
        switch endpoint {
        case .unixSocket(let path): text += ":" + path
        case .loopback(let host, let port): text += ":\(host):\(port)"
        case .defaultSocket, nil: break
        }
        if namespace != 1 { text += ",namespace=\(namespace)" }
        if readOnly { text += ",read-only" }
        return text
    }

    /// Throws when two of `exports` would listen at the same place: the same socket path or
    /// TCP port, or one namespace twice on its default socket.
    public static func checkDistinct(_ exports: [ExportSpecification]) throws(ExportSpecificationError) {
        var seen: [Endpoint] = []
        for e in exports {
            guard let endpoint = e.endpoint else { continue }
            if endpoint == .defaultSocket, exports.filter({ $0.endpoint == .defaultSocket && $0.namespace == e.namespace }).count > 1 {
                throw .init(e.description, "namespace \(e.namespace) is exported twice on the default socket: give each its own socket")
            }
            if endpoint != .defaultSocket, seen.contains(endpoint) {
                throw .init(e.description, "two exports listen at the same place")
            }
            seen.append(endpoint)
        }
    }
}

/// An export specification that does not parse or does not fit.
public struct ExportSpecificationError: Error, Equatable, CustomStringConvertible {
    public var specification: String
    public var reason: String

    init(_ specification: String, _ reason: String) {
        self.specification = specification
        self.reason = reason
    }

    public var description: String {
        "export \"\(specification)\": \(reason) (form: nbd[:/path.sock|:127.0.0.1:PORT] or ublk, then ,namespace=N ,read-only)"
    }
}
