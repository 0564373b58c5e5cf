import Foundation
import Testing

/// `vfiokit nvme nbd --simulated IMAGE`: the URI on the first line, a real client served, and
/// SIGTERM with a client connected ending in order.
@Suite("vfiokit nvme nbd", .serialized)
struct NBDCommandTests {
    /// A short directory for the socket (a Unix socket path holds at most 107 bytes).
    func scratch() throws -> String {
        let path = "/tmp/vfiokit-nbdcli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test(
        "prints nbd+unix:///?socket=PATH first; the socket is mode 0660; SIGTERM with a client connected: the client's request is answered, it is disconnected, the process exits 0 and removes the socket"
    )
    func servesAndStops() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socketPath = dir + "/nbd.sock"
        let server = try BackgroundVFIOKit(
            ["nvme", "nbd", "--simulated", dir + "/image", "--create", "64M", "--socket", socketPath], environment: [:])
        #expect(eventually { server.output.contains("\n") })
        #expect(
            server.output.split(separator: "\n").first.map(String.init) == "nbd+unix:///?socket=\(socketPath)",
            "\(server.output)\(server.error)")
        var info = stat()
        #expect(stat(socketPath, &info) == 0 && info.st_mode & 0o777 == 0o660)

        // A client in transmission: the fixed newstyle handshake by hand, then a write.
        let client = try RawNBDSocket(socketPath)
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { RawNBDSocket.be(v) }
        let send = client.send, receive = client.receive
        #expect(client.enterTransmission())
        let payload = [UInt8](repeating: 0x6b, count: 4096)
        send(be(UInt32(0x2560_9513)) + be(UInt16(1)) + be(UInt16(1)) + be(UInt64(77)) + be(UInt64(8192)) + be(UInt32(4096)) + payload)
        let reply = receive(16)
        #expect(reply.map { Array($0[4..<8]) } == [0, 0, 0, 0], "the write succeeded")

        #expect(server.stop(SIGTERM) == 0, "\(server.output)\(server.error)")
        #expect(receive(1) == nil, "the client was disconnected")
        #expect(!FileManager.default.fileExists(atPath: socketPath), "the socket file is gone")
        #expect(server.output.contains("1 client(s)") && server.output.contains("4096 written"), "\(server.output)")
        // The write reached the image.
        let image = try Data(contentsOf: URL(fileURLWithPath: dir + "/image"))
        #expect(image[8192..<12288] == Data(payload))
    }

    @Test("a TCP address that is not loopback is refused with the reason")
    func refusesNonLoopback() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runVFIOKit([
            "nvme", "nbd", "--simulated", dir + "/image", "--create", "64M", "--socket", dir + "/s", "--tcp", "0.0.0.0:10809",
        ])
        #expect(r.status != 0)
        #expect(r.error.contains("not a loopback address"), "\(r.error)")
    }
}
