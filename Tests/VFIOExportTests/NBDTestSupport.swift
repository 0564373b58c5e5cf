import Foundation
import PCI
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock
@testable import VFIOExport

/// A simulated NVMe controller exported over NBD on a Unix socket in a fresh directory.
final class NBDFixture {
    let kernel = MockKernel()
    let namespace: NVMeNamespace
    let controller: NVMeController
    let device: PCIDevice
    let loop: EventLoop
    let driver: NVMeDriver
    let server: NBDServer
    let directory: String
    var socketPath: String { directory + "/nbd.sock" }
    var uri: String { "nbd+unix:///?socket=\(socketPath)" }

    init(
        blocks: UInt64 = 131_072, blockSize: Int = 512, queues: Int = 2, controllerOptions: NVMeController.Options = .init(),
        commandTimeout: Duration = .seconds(5),
        configure: (inout NBDServer.Configuration) -> Void = { _ in }
    ) throws {
        namespace = NVMeNamespace(blockCount: blocks, blockSize: blockSize)
        controller = NVMeController(namespaces: [namespace], options: controllerOptions)
        let address = try PCIAddress(parsing: "0000:01:00.0")
        try kernel.plug(controller, at: address)
        device = try PCIDevice.open(address, backend: .iommufd, system: kernel)
        loop = try EventLoop(system: kernel)
        try loop.start()
        var configuration = NVMeDriver.Configuration()
        configuration.polled = true
        configuration.queues = queues
        configuration.queueDepth = 64
        configuration.commandTimeout = commandTimeout
        driver = try NVMeDriver(device: device, loop: loop, configuration: configuration)
        try driver.bringUp()
        var template = Array("/tmp/vfiokit-nbd-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else { throw POSIXError(.EIO) }
        directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var server = NBDServer.Configuration()
        server.socketPath = directory + "/nbd.sock"
        configure(&server)
        self.server = try NBDServer(driver: driver, configuration: server)
        try self.server.start()
    }

    deinit {
        server.stop()
        driver.shutDown()
        loop.stop()
        device.close()
        controller.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A client program from the distribution, found on PATH.
enum Tool {
    static func path(_ name: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") + ["/usr/bin", "/usr/sbin"]
        return dirs.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func has(_ names: String...) -> Bool { names.allSatisfy { path($0) != nil } }

    /// Runs `name` with `arguments`, at most `timeout` seconds (then it is killed).
    static func run(_ name: String, _ arguments: [String], timeout: Double = 120) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path(name)!)
        process.arguments = arguments
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("out"), err = directory.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        return (process.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
    }
}

/// A hand-written NBD client for what real clients never send: it speaks the protocol byte by
/// byte over a blocking socket with a 10 s receive timeout, so a test never hangs.
final class RawNBDClient {
    let fd: Int32
    private(set) var size: UInt64 = 0
    private(set) var flags: UInt16 = 0
    private(set) var structured = false

    struct Reply: Equatable {
        var handle: UInt64
        var error: UInt32
        var data: [UInt8]
    }

    struct ClientError: Error, CustomStringConvertible {
        let description: String
    }

    /// Connects and reads the greeting; `go` also negotiates (structured replies when asked) and
    /// enters transmission.
    init(path: String, go: Bool = true, structured: Bool = true) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw ClientError(description: "connect to \(path): errno \(errno)")
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let greeting = try receive(18)
        guard integer(greeting[0..<8]) == NBD.initMagic, integer(greeting[8..<16]) == NBD.optionMagic else {
            throw ClientError(description: "no NBDMAGIC/IHAVEOPT greeting")
        }
        try send(bytes(UInt32(NBD.clientFlagFixedNewstyle | NBD.clientFlagNoZeroes)))
        guard go else { return }
        if structured {
            let r = try option(NBD.Option.structuredReply)
            guard r.last?.type == NBD.Reply.ack else { throw ClientError(description: "structured replies refused") }
            self.structured = true
        }
        let replies = try option(NBD.Option.go, goData(name: "", infos: [NBD.Info.blockSize]))
        guard replies.last?.type == NBD.Reply.ack, let export = replies.first(where: { $0.type == NBD.Reply.info && $0.data.count == 12 })
        else { throw ClientError(description: "NBD_OPT_GO failed: \(replies.map(\.type))") }
        size = integer(export.data[2..<10])
        flags = UInt16(integer(export.data[10..<12]))
    }

    deinit { close(fd) }

    func goData(name: String, infos: [UInt16]) -> [UInt8] {
        bytes(UInt32(name.utf8.count)) + Array(name.utf8) + bytes(UInt16(infos.count)) + infos.flatMap { bytes($0) }
    }

    /// Sends option `code` with `data`; returns the replies up to the final one (an ACK or an error).
    func option(_ code: UInt32, _ data: [UInt8] = []) throws -> [(type: UInt32, data: [UInt8])] {
        try send(bytes(NBD.optionMagic) + bytes(code) + bytes(UInt32(data.count)) + data)
        var replies: [(UInt32, [UInt8])] = []
        while true {
            let h = try receive(20)
            guard integer(h[0..<8]) == NBD.optionReplyMagic, UInt32(integer(h[8..<12])) == code else {
                throw ClientError(description: "a bad option reply header")
            }
            let type = UInt32(integer(h[12..<16]))
            let payload = try receive(Int(integer(h[16..<20])))
            replies.append((type, payload))
            if type == NBD.Reply.ack || type & (1 << 31) != 0 { return replies }
        }
    }

    func request(_ command: UInt16, flags: UInt16 = 0, handle: UInt64, offset: UInt64, length: UInt32, payload: [UInt8] = []) throws {
        try send(bytes(NBD.requestMagic) + bytes(flags) + bytes(command) + bytes(handle) + bytes(offset) + bytes(length) + payload)
    }

    /// The next whole reply (the chunks of a structured one gathered).
    func reply() throws -> Reply {
        let magic = UInt32(integer(try receive(4)))
        if magic == NBD.simpleReplyMagic {
            let rest = try receive(12)
            return Reply(handle: integer(rest[4..<12]), error: UInt32(integer(rest[0..<4])), data: [])
        }
        guard magic == NBD.structuredReplyMagic else { throw ClientError(description: "reply magic 0x\(String(magic, radix: 16))") }
        var reply = Reply(handle: 0, error: 0, data: [])
        var header = try receive(16)
        while true {
            let flags = UInt16(integer(header[0..<2])), type = UInt16(integer(header[2..<4]))
            reply.handle = integer(header[4..<12])
            let payload = try receive(Int(integer(header[12..<16])))
            if type == NBD.ReplyType.error { reply.error = UInt32(integer(payload[0..<4])) }
            if type == NBD.ReplyType.offsetData { reply.data += payload[8...] }
            if flags & NBD.ReplyType.flagDone != 0 { return reply }
            guard UInt32(integer(try receive(4))) == NBD.structuredReplyMagic else { throw ClientError(description: "a bad chunk") }
            header = try receive(16)
        }
    }

    /// A simple reply's data, which the client knows the length of.
    func data(_ count: Int) throws -> [UInt8] { try receive(count) }

    /// True once the server has closed the connection (within the receive timeout).
    func isClosed() -> Bool {
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, 0)
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    func send(_ data: [UInt8]) throws {
        var done = 0
        while done < data.count {
            let n = data.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, data.count - done, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError(description: "send: errno \(errno)") }
            done += n
        }
    }

    func receive(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + done, count - done, 0) }
            guard n > 0 else { throw ClientError(description: n == 0 ? "the server closed the connection" : "recv: errno \(errno)") }
            done += n
        }
        return out
    }
}

func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
func integer<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }

/// `count` bytes of a repeatable pattern.
func pattern(_ count: Int, seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ ($0 >> 9)) } }

/// Whether two byte arrays are equal, without printing megabytes when they are not.
func same(_ a: [UInt8], _ b: [UInt8]) -> Bool { a == b }
