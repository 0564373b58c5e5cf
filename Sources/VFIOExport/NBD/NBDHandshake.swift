#if canImport(Glibc)
import Glibc
#endif

/// The fixed newstyle handshake on one accepted socket, on a control thread with blocking I/O
/// bounded by the socket's timeouts: option haggling (``NBD/Option``) until the client enters
/// transmission (NBD_OPT_GO or NBD_OPT_EXPORT_NAME) or leaves. Unknown options are answered with
/// NBD_REP_ERR_UNSUP; a client that breaks the protocol (a bad magic, an option longer than
/// ``maxOptionLength``) is dropped.
struct NBDHandshake {
    /// What the export tells clients.
    struct Export {
        var name: String
        var size: UInt64
        var transmissionFlags: UInt16
        var minimumBlock: UInt32
        var preferredBlock: UInt32
        var maximumBlock: UInt32
    }

    enum Outcome: Equatable {
        /// The client entered transmission; `structured`: it negotiated structured replies.
        case transmission(structured: Bool)
        /// The client aborted, left, or was dropped (`reason` says which).
        case closed(reason: String)
    }

    static let maxOptionLength = 65536

    let fd: Int32
    let export: Export

    /// Runs the handshake.
    func run() -> Outcome {
        var greeting = ByteWriter()
        greeting.append(NBD.initMagic)
        greeting.append(NBD.optionMagic)
        greeting.append(NBD.flagFixedNewstyle | NBD.flagNoZeroes)
        guard send(greeting.bytes) else { return .closed(reason: "the client left before the greeting was sent") }
        guard let clientFlags: UInt32 = receiveInteger() else { return .closed(reason: "the client sent no flags") }
        guard clientFlags & ~(NBD.clientFlagFixedNewstyle | NBD.clientFlagNoZeroes) == 0 else {
            return .closed(reason: "the client sent unknown flags 0x\(String(clientFlags, radix: 16))")
        }
        let noZeroes = clientFlags & NBD.clientFlagNoZeroes != 0
        var structured = false
        while true {
            guard let magic: UInt64 = receiveInteger(), let option: UInt32 = receiveInteger(), let length: UInt32 = receiveInteger() else {
                return .closed(reason: "the client left during option haggling")
            }
            guard magic == NBD.optionMagic else {
                return .closed(reason: "an option without the IHAVEOPT magic (0x\(String(magic, radix: 16)))")
            }
            guard length <= Self.maxOptionLength else {
                return .closed(reason: "an option of \(length) bytes (at most \(Self.maxOptionLength))")
            }
            guard let data = receive(Int(length)) else { return .closed(reason: "the client left inside an option") }
            switch option {
            case NBD.Option.exportName:
                guard String(decoding: data, as: UTF8.self) == export.name || data.isEmpty else {
                    return .closed(reason: "NBD_OPT_EXPORT_NAME for an unknown export")
                }
                var w = ByteWriter()
                w.append(export.size)
                w.append(export.transmissionFlags)
                if !noZeroes { w.bytes += [UInt8](repeating: 0, count: 124) }
                return send(w.bytes) ? .transmission(structured: false) : .closed(reason: "the client left")
            case NBD.Option.abort:
                _ = reply(option, NBD.Reply.ack)
                return .closed(reason: "the client aborted")
            case NBD.Option.list:
                guard data.isEmpty else {
                    guard reply(option, NBD.Reply.errorInvalid) else { return .closed(reason: "the client left") }
                    continue
                }
                var w = ByteWriter()
                w.append(UInt32(export.name.utf8.count))
                w.bytes += Array(export.name.utf8)
                guard reply(option, NBD.Reply.server, w.bytes), reply(option, NBD.Reply.ack) else {
                    return .closed(reason: "the client left")
                }
            case NBD.Option.structuredReply:
                if data.isEmpty { structured = true }
                guard reply(option, data.isEmpty ? NBD.Reply.ack : NBD.Reply.errorInvalid) else {
                    return .closed(reason: "the client left")
                }
            case NBD.Option.info, NBD.Option.go:
                switch answerInfo(option, data) {
                case nil: return .closed(reason: "the client left")
                case false?: continue
                case true?: if option == NBD.Option.go { return .transmission(structured: structured) }
                }
            default:
                guard reply(option, NBD.Reply.errorUnsupported) else { return .closed(reason: "the client left") }
            }
        }
    }

    /// NBD_OPT_INFO and NBD_OPT_GO: the export's size and flags, its block sizes and (when asked)
    /// its name, then NBD_REP_ACK. Returns false after an error reply, nil when the client left.
    private func answerInfo(_ option: UInt32, _ data: [UInt8]) -> Bool? {
        guard data.count >= 6 else { return reply(option, NBD.Reply.errorInvalid) ? false : nil }
        let nameLength = Int(UInt32(data[0]) << 24 | UInt32(data[1]) << 16 | UInt32(data[2]) << 8 | UInt32(data[3]))
        guard nameLength <= data.count - 6 else { return reply(option, NBD.Reply.errorInvalid) ? false : nil }
        let name = String(decoding: data[4..<4 + nameLength], as: UTF8.self)
        let count = Int(UInt16(data[4 + nameLength]) << 8 | UInt16(data[5 + nameLength]))
        guard data.count == 6 + nameLength + 2 * count else { return reply(option, NBD.Reply.errorInvalid) ? false : nil }
        guard name == export.name || name.isEmpty else { return reply(option, NBD.Reply.errorUnknown) ? false : nil }
        let requested = (0..<count).map { i in UInt16(data[6 + nameLength + 2 * i]) << 8 | UInt16(data[7 + nameLength + 2 * i]) }
        var info = ByteWriter()
        info.append(NBD.Info.export)
        info.append(export.size)
        info.append(export.transmissionFlags)
        guard reply(option, NBD.Reply.info, info.bytes) else { return nil }
        var sizes = ByteWriter()
        sizes.append(NBD.Info.blockSize)
        sizes.append(export.minimumBlock)
        sizes.append(export.preferredBlock)
        sizes.append(export.maximumBlock)
        guard reply(option, NBD.Reply.info, sizes.bytes) else { return nil }
        if requested.contains(NBD.Info.name) {
            var named = ByteWriter()
            named.append(NBD.Info.name)
            named.bytes += Array(export.name.utf8)
            guard reply(option, NBD.Reply.info, named.bytes) else { return nil }
        }
        return reply(option, NBD.Reply.ack) ? true : nil
    }

    /// One option reply; false when the client is gone.
    private func reply(_ option: UInt32, _ type: UInt32, _ payload: [UInt8] = []) -> Bool {
        var w = ByteWriter()
        w.append(NBD.optionReplyMagic)
        w.append(option)
        w.append(type)
        w.append(UInt32(payload.count))
        w.bytes += payload
        return send(w.bytes)
    }

    private func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = Glibc.send(fd, b.baseAddress! + done, b.count - done, Int32(MSG_NOSIGNAL))
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
    }

    private func receive(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBytes { b in
            var done = 0
            while done < count {
                let n = recv(fd, b.baseAddress! + done, count - done, 0)
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
        return ok ? bytes : nil
    }

    private func receiveInteger<T: FixedWidthInteger>() -> T? {
        guard let b = receive(MemoryLayout<T>.size) else { return nil }
        return b.reduce(T(0)) { $0 << 8 | T($1) }
    }
}

/// Big-endian bytes for the handshake's messages (control path).
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes += $0 }
    }
}
