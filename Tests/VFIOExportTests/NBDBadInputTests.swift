#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VFIOMock
@testable import VFIOExport

/// What real clients never send, over raw sockets: each gets the protocol's error or ends its
/// own connection, nothing on the namespace changes, and other clients go on.
@Suite("NBD export: bad input over raw sockets", .serialized)
struct NBDBadInputTests {
    /// 1 MiB namespace, requests up to 64 KiB.
    func fixture(readOnly: Bool = false) throws -> NBDFixture {
        let f = try NBDFixture(blocks: 2048) { c in
            c.maxRequest = 64 << 10
            c.readOnly = readOnly
            c.depth = 8
        }
        f.namespace.write(lba: 0, pattern(2048 * 512, seed: 9))
        return f
    }

    @Test("out of range: a read is EINVAL, a write ENOSPC; misaligned: EINVAL; the connection goes on; nothing changed")
    func rangeAndAlignment() throws {
        let f = try fixture()
        let before = f.namespace.read(lba: 0, count: 2048)
        let c = try RawNBDClient(path: f.socketPath)
        let size = UInt64(2048 * 512)
        try c.request(NBD.Command.read, handle: 1, offset: size, length: 512)
        #expect(try c.reply() == .init(handle: 1, error: NBD.Error.invalid, data: []))
        try c.request(NBD.Command.read, handle: 2, offset: size - 512, length: 1024)
        #expect(try c.reply().error == NBD.Error.invalid)
        try c.request(NBD.Command.read, handle: 3, offset: .max - 511, length: 1024)
        #expect(try c.reply().error == NBD.Error.invalid, "an offset that wraps")
        try c.request(NBD.Command.write, handle: 4, offset: size - 512, length: 1024, payload: [UInt8](repeating: 1, count: 1024))
        #expect(try c.reply() == .init(handle: 4, error: NBD.Error.noSpace, data: []))
        try c.request(NBD.Command.read, handle: 5, offset: 100, length: 512)
        #expect(try c.reply().error == NBD.Error.invalid, "offset not on a block")
        try c.request(NBD.Command.write, handle: 6, offset: 512, length: 100, payload: [UInt8](repeating: 2, count: 100))
        #expect(try c.reply().error == NBD.Error.invalid, "length not whole blocks")
        try c.request(NBD.Command.read, handle: 7, offset: 0, length: 0)
        #expect(try c.reply().error == NBD.Error.invalid, "empty")
        try c.request(9, handle: 8, offset: 0, length: 512)
        #expect(try c.reply().error == NBD.Error.invalid, "an unknown command")
        try c.request(NBD.Command.read, flags: 1 << 7, handle: 9, offset: 0, length: 512)
        #expect(try c.reply().error == NBD.Error.invalid, "an unknown flag")
        try c.request(NBD.Command.trim, handle: 10, offset: size, length: 512)
        #expect(try c.reply().error == NBD.Error.invalid, "a trim past the end")
        try c.request(NBD.Command.writeZeroes, handle: 12, offset: size - 512, length: 1024)
        #expect(try c.reply().error == NBD.Error.noSpace, "write zeroes past the end")
        try c.request(NBD.Command.read, handle: 11, offset: size - 512, length: 512)
        #expect(try c.reply() == .init(handle: 11, error: 0, data: Array(before[Int(size) - 512..<Int(size)])), "the connection still serves")
        #expect(same(f.namespace.read(lba: 0, count: 2048), before), "nothing changed")
        #expect(f.server.statistics.errors == 11)
    }

    @Test("requests over the advertised largest, as the kernel's nbd client sends them, are served whole, one after another")
    func overTheAdvertisedLargest() throws {
        let f = try fixture()
        var expected = f.namespace.read(lba: 0, count: 2048)
        let c = try RawNBDClient(path: f.socketPath, structured: false)
        // Two 384 KiB writes and a 768 KiB read of both (over the controller's 512 KiB MDTS),
        // sent before any reply is read: the second waits for the first's buffer, the read for
        // the second's.
        let a = pattern(384 << 10, seed: 3), b = pattern(384 << 10, seed: 4)
        try c.request(NBD.Command.write, flags: NBD.CommandFlag.fua, handle: 1, offset: 4096, length: 384 << 10, payload: a)
        try c.request(NBD.Command.write, handle: 2, offset: 4096 + (384 << 10), length: 384 << 10, payload: b)
        try c.request(NBD.Command.read, handle: 3, offset: 4096, length: 768 << 10)
        #expect(try c.reply() == .init(handle: 1, error: 0, data: []))
        #expect(try c.reply() == .init(handle: 2, error: 0, data: []))
        let r = try c.reply()
        #expect(r.handle == 3 && r.error == 0)
        #expect(try c.data(768 << 10) == a + b, "the read returns both writes")
        expected.replaceSubrange(4096..<4096 + (768 << 10), with: a + b)
        #expect(same(f.namespace.read(lba: 0, count: 2048), expected), "exactly those blocks changed")
    }

    @Test("a write over NBD's 32 MiB: its payload is consumed, EINVAL, and the next request is served")
    func overThirtyTwoMebibytes() throws {
        let f = try NBDFixture(blocks: 70_000) { c in
            c.maxRequest = 64 << 10
            c.depth = 8
        }
        let length = (32 << 20) + 512
        let c = try RawNBDClient(path: f.socketPath, structured: false)
        try c.request(NBD.Command.write, handle: 1, offset: 0, length: UInt32(length), payload: [UInt8](repeating: 0xee, count: length))
        #expect(try c.reply() == .init(handle: 1, error: NBD.Error.invalid, data: []))
        try c.request(NBD.Command.read, handle: 2, offset: 0, length: 4096)
        let r = try c.reply()
        #expect(r.handle == 2 && r.error == 0)
        #expect(try c.data(4096) == [UInt8](repeating: 0, count: 4096), "nothing was written")
    }

    @Test("garbage instead of a request magic ends that connection only")
    func garbage() throws {
        let f = try fixture()
        let good = try RawNBDClient(path: f.socketPath)
        let bad = try RawNBDClient(path: f.socketPath)
        try bad.send([UInt8](repeating: 0x41, count: 28))
        #expect(bad.isClosed())
        try good.request(NBD.Command.read, handle: 7, offset: 0, length: 512)
        #expect(try good.reply().error == 0)
        #expect(waitFor { f.server.statistics.clients == 1 }, "the bad connection ended, the good one stays")
    }

    @Test("a client that closes mid-write: nothing is written, the export goes on")
    func closeMidRequest() throws {
        let f = try fixture()
        let before = f.namespace.read(lba: 0, count: 2048)
        do {
            let c = try RawNBDClient(path: f.socketPath)
            try c.request(NBD.Command.write, handle: 1, offset: 0, length: 8192, payload: [UInt8](repeating: 0x77, count: 4000))
            // And one whose header is cut short.
            let d = try RawNBDClient(path: f.socketPath)
            try d.send(bytes(NBD.requestMagic) + bytes(UInt16(0)))
        }
        let c = try RawNBDClient(path: f.socketPath)
        try c.request(NBD.Command.read, handle: 2, offset: 0, length: 8192)
        #expect(try c.reply().data == Array(before[0..<8192]))
        #expect(same(f.namespace.read(lba: 0, count: 2048), before), "nothing changed")
        #expect(waitFor { f.server.statistics.clients == 1 }, "the two closed connections ended")
    }

    @Test("64 clients connect at once: each gets through the handshake and is served")
    func sixtyFourClients() async throws {
        let f = try fixture()
        let path = f.socketPath
        let results = await withTaskGroup(of: String?.self) { group in
            for i in 0..<64 {
                group.addTask {
                    do {
                        let c = try RawNBDClient(path: path)
                        let offset = UInt64(i * 4096 % (1 << 20))
                        try c.request(NBD.Command.write, flags: NBD.CommandFlag.fua, handle: UInt64(i), offset: offset, length: 512, payload: [UInt8](repeating: UInt8(i), count: 512))
                        let w = try c.reply()
                        try c.request(NBD.Command.read, handle: UInt64(i) + 1000, offset: offset, length: 512)
                        let r = try c.reply()
                        let served = w.error == 0 && w.handle == UInt64(i) && r.handle == UInt64(i) + 1000 && r.data == [UInt8](repeating: UInt8(i), count: 512)
                        return served ? nil : "client \(i): write \(w), read error \(r.error) handle \(r.handle)"
                    } catch {
                        return "client \(i): \(error)"
                    }
                }
            }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(results.count == 64)
        #expect(results.compactMap { $0 }.isEmpty, "\(results.compactMap { $0 })")
        #expect(waitFor { f.server.statistics.clients == 0 })
        #expect(f.server.statistics.connections == 64)
    }

    @Test("trim deallocates and write-zeroes zeroes exactly their blocks (with and without NO_HOLE, with FUA)")
    func trimAndZero() throws {
        let f = try fixture()
        let before = f.namespace.read(lba: 0, count: 2048)
        let c = try RawNBDClient(path: f.socketPath)
        #expect(c.flags & (NBD.Flag.sendTrim | NBD.Flag.sendWriteZeroes) == NBD.Flag.sendTrim | NBD.Flag.sendWriteZeroes)
        try c.request(NBD.Command.trim, handle: 1, offset: 4096, length: 8192)
        #expect(try c.reply() == .init(handle: 1, error: 0, data: []))
        try c.request(NBD.Command.writeZeroes, flags: NBD.CommandFlag.noHole | NBD.CommandFlag.fua, handle: 2, offset: 65536, length: 512)
        #expect(try c.reply() == .init(handle: 2, error: 0, data: []))
        try c.request(NBD.Command.writeZeroes, handle: 3, offset: 512 * 1000, length: 512 * 1000)
        #expect(try c.reply() == .init(handle: 3, error: 0, data: []))
        var expected = before
        for range in [4096..<12288, 65536..<66048, 512_000..<1_024_000] {
            expected.replaceSubrange(range, with: [UInt8](repeating: 0, count: range.count))
        }
        #expect(same(f.namespace.read(lba: 0, count: 2048), expected), "exactly the three ranges are zero")
        #expect(f.server.statistics.discards == 1 && f.server.statistics.writeZeroes == 2)
    }

    @Test("a controller without Dataset Management or Write Zeroes: neither is advertised, both are EOPNOTSUPP")
    func noDataCommands() throws {
        var options = NVMeController.Options()
        options.optionalCommands = 0
        let f = try NBDFixture(blocks: 64, controllerOptions: options)
        let c = try RawNBDClient(path: f.socketPath)
        #expect(c.flags & (NBD.Flag.sendTrim | NBD.Flag.sendWriteZeroes) == 0)
        try c.request(NBD.Command.trim, handle: 1, offset: 0, length: 512)
        #expect(try c.reply().error == NBD.Error.notSupported)
        try c.request(NBD.Command.writeZeroes, handle: 2, offset: 0, length: 512)
        #expect(try c.reply().error == NBD.Error.notSupported)
    }

    @Test("a read-only export says so and refuses writes with EPERM; nothing changes")
    func readOnly() throws {
        let f = try fixture(readOnly: true)
        let before = f.namespace.read(lba: 0, count: 2048)
        let c = try RawNBDClient(path: f.socketPath)
        #expect(c.flags & NBD.Flag.readOnly != 0)
        try c.request(NBD.Command.write, handle: 1, offset: 0, length: 512, payload: [UInt8](repeating: 3, count: 512))
        #expect(try c.reply() == .init(handle: 1, error: NBD.Error.perm, data: []))
        try c.request(NBD.Command.writeZeroes, handle: 2, offset: 0, length: 512)
        #expect(try c.reply().error == NBD.Error.perm)
        try c.request(NBD.Command.read, handle: 3, offset: 0, length: 512)
        #expect(try c.reply().data == Array(before[0..<512]))
        #expect(same(f.namespace.read(lba: 0, count: 2048), before), "nothing changed")
    }

    @Test("stop with clients connected: in-flight requests are answered, then each client is disconnected")
    func stopWithClients() throws {
        let f = try fixture()
        let a = try RawNBDClient(path: f.socketPath)
        let b = try RawNBDClient(path: f.socketPath)
        // Several requests in flight on a, unread replies included.
        for i in 0..<4 {
            try a.request(NBD.Command.write, flags: NBD.CommandFlag.fua, handle: UInt64(i), offset: UInt64(i) * 4096, length: 4096, payload: [UInt8](repeating: 0x5a, count: 4096))
        }
        try b.request(NBD.Command.flush, handle: 99, offset: 0, length: 0)
        #expect(waitFor { f.server.statistics.writes == 4 && f.server.statistics.flushes == 1 })
        let clock = ContinuousClock()
        let took = clock.measure { f.server.stop() }
        #expect(took < .seconds(3))
        #expect(try (0..<4).map { _ in try a.reply().handle }.sorted() == [0, 1, 2, 3], "every in-flight request was answered")
        #expect(try b.reply() == .init(handle: 99, error: 0, data: []))
        #expect(a.isClosed() && b.isClosed())
        #expect(f.namespace.read(lba: 0, count: 32) == [UInt8](repeating: 0x5a, count: 16384))
        #expect(f.server.statistics.clients == 0)
        #expect((try? RawNBDClient(path: f.socketPath)) == nil, "no new clients")
    }
}

/// Polls `condition` every 10 ms for up to 10 s.
func waitFor(_ condition: () -> Bool) -> Bool {
    for _ in 0..<1000 {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// The device misbehaving under a connected client: each request is answered with EIO, never
/// left hanging.
@Suite("NBD export: device failures", .serialized)
struct NBDDeviceFailureTests {
    @Test("a command the controller never completes is aborted at the command timeout: EIO, and the connection goes on")
    func stalledCommand() throws {
        let f = try NBDFixture(blocks: 64, commandTimeout: .milliseconds(300))
        let c = try RawNBDClient(path: f.socketPath)
        f.controller.stall(commands: 1, opcode: 0x02)
        try c.request(NBD.Command.read, handle: 1, offset: 0, length: 512)
        #expect(try c.reply() == .init(handle: 1, error: NBD.Error.io, data: []))
        try c.request(NBD.Command.read, handle: 2, offset: 512, length: 512)
        #expect(try c.reply().error == 0)
    }

    @Test("a controller that turns fatal and comes back after the driver resets it: the client sees a delay, not an error")
    func fatalControllerThatComesBack() throws {
        let f = try NBDFixture(blocks: 64, commandTimeout: .milliseconds(300))
        let c = try RawNBDClient(path: f.socketPath)
        f.controller.injectFatalStatus()
        try c.request(NBD.Command.write, handle: 1, offset: 0, length: 512, payload: [UInt8](repeating: 1, count: 512))
        #expect(try c.reply() == .init(handle: 1, error: 0, data: []))
        try c.request(NBD.Command.read, handle: 2, offset: 0, length: 512)
        #expect(try c.reply() == .init(handle: 2, error: 0, data: [UInt8](repeating: 1, count: 512)))
        #expect(f.server.stop() == 0)
    }

    @Test("a controller that turns fatal for good: the request in flight and every later one get EIO; stop() still ends in order")
    func fatalController() throws {
        let f = try NBDFixture(blocks: 64, commandTimeout: .milliseconds(300))
        let c = try RawNBDClient(path: f.socketPath)
        f.controller.injectPermanentFailure()
        try c.request(NBD.Command.write, handle: 1, offset: 0, length: 512, payload: [UInt8](repeating: 1, count: 512))
        #expect(try c.reply() == .init(handle: 1, error: NBD.Error.io, data: []))
        try c.request(NBD.Command.read, handle: 2, offset: 0, length: 512)
        #expect(try c.reply().error == NBD.Error.io)
        #expect(f.server.stop() == 0)
        #expect(c.isClosed())
    }

    @Test("stop while a request is still on the device: stop waits for it, the client gets its reply, then the disconnect")
    func stopWaitsForTheDevice() throws {
        let f = try NBDFixture(blocks: 64, commandTimeout: .milliseconds(500))
        let c = try RawNBDClient(path: f.socketPath)
        f.controller.stall(commands: 1, opcode: 0x01)
        try c.request(NBD.Command.write, handle: 7, offset: 0, length: 512, payload: [UInt8](repeating: 1, count: 512))
        #expect(waitFor { f.server.statistics.inFlight == 1 })
        let clock = ContinuousClock()
        let start = clock.now
        #expect(f.server.stop() == 0)
        #expect(clock.now - start >= .milliseconds(300), "stop waited for the request on the device")
        #expect(try c.reply() == .init(handle: 7, error: NBD.Error.io, data: []), "answered (the controller's abort), not dropped")
        #expect(c.isClosed())
    }
}
