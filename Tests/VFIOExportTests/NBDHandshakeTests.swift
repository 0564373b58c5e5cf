import Testing
@testable import VFIOExport

/// Option haggling over a raw socket: what each option answers.
@Suite("NBD export: the fixed newstyle handshake", .serialized)
struct NBDHandshakeTests {
    @Test("NBD_OPT_LIST names the export; NBD_OPT_INFO gives size, flags and block sizes and stays in haggling")
    func listAndInfo() throws {
        let f = try NBDFixture(blocks: 4096) { $0.exportName = "disk" }
        let c = try RawNBDClient(path: f.socketPath, go: false)
        let list = try c.option(NBD.Option.list)
        #expect(list.map(\.type) == [NBD.Reply.server, NBD.Reply.ack])
        #expect(list[0].data == bytes(UInt32(4)) + Array("disk".utf8))
        let info = try c.option(NBD.Option.info, c.goData(name: "disk", infos: [NBD.Info.blockSize, NBD.Info.name]))
        #expect(info.last?.type == NBD.Reply.ack)
        let export = try #require(info.first { $0.data.prefix(2) == [0, 0] })
        #expect(integer(export.data[2..<10]) == 4096 * 512)
        let flags = UInt16(integer(export.data[10..<12]))
        #expect(
            flags & (NBD.Flag.hasFlags | NBD.Flag.sendFlush | NBD.Flag.sendFUA | NBD.Flag.canMultiConn) == NBD.Flag.hasFlags
                | NBD.Flag.sendFlush | NBD.Flag.sendFUA | NBD.Flag.canMultiConn)
        #expect(
            flags & (NBD.Flag.sendTrim | NBD.Flag.sendWriteZeroes) == NBD.Flag.sendTrim | NBD.Flag.sendWriteZeroes,
            "the controller has DSM and Write Zeroes")
        #expect(flags & NBD.Flag.readOnly == 0)
        let sizes = try #require(info.first { $0.data.prefix(2) == [0, 3] })
        #expect(sizes.data == bytes(UInt16(3)) + bytes(UInt32(512)) + bytes(UInt32(4096)) + bytes(UInt32(f.server.geometry.maxTransfer)))
        #expect(info.contains { $0.data == bytes(UInt16(1)) + Array("disk".utf8) })
        // Still haggling: a GO for an unknown name is refused, for the right one accepted.
        #expect(try c.option(NBD.Option.go, c.goData(name: "other", infos: [])).map(\.type) == [NBD.Reply.errorUnknown])
        #expect(try c.option(NBD.Option.go, c.goData(name: "disk", infos: [])).last?.type == NBD.Reply.ack)
    }

    @Test("unknown options and STARTTLS are NBD_REP_ERR_UNSUP; malformed ones NBD_REP_ERR_INVALID; ABORT is acknowledged")
    func refusals() throws {
        let f = try NBDFixture(blocks: 64)
        let c = try RawNBDClient(path: f.socketPath, go: false)
        #expect(try c.option(42, [1, 2, 3]).map(\.type) == [NBD.Reply.errorUnsupported])
        #expect(try c.option(5).map(\.type) == [NBD.Reply.errorUnsupported], "STARTTLS: no TLS here")
        #expect(try c.option(NBD.Option.list, [0]).map(\.type) == [NBD.Reply.errorInvalid])
        #expect(try c.option(NBD.Option.go, [0, 0, 0, 9, 0]).map(\.type) == [NBD.Reply.errorInvalid], "a name longer than the option")
        #expect(try c.option(NBD.Option.structuredReply, [1]).map(\.type) == [NBD.Reply.errorInvalid])
        #expect(try c.option(NBD.Option.abort).map(\.type) == [NBD.Reply.ack])
        #expect(c.isClosed())
    }

    @Test("a bad option magic or an oversized option drops the client; the export goes on")
    func violations() throws {
        let f = try NBDFixture(blocks: 64)
        let c = try RawNBDClient(path: f.socketPath, go: false)
        try c.send([UInt8](repeating: 0, count: 16))
        #expect(c.isClosed())
        let d = try RawNBDClient(path: f.socketPath, go: false)
        try d.send(bytes(NBD.optionMagic) + bytes(UInt32(99)) + bytes(UInt32(1 << 30)))
        #expect(d.isClosed())
        let e = try RawNBDClient(path: f.socketPath)
        try e.request(NBD.Command.flush, handle: 5, offset: 0, length: 0)
        #expect(try e.reply().error == 0)
    }

    @Test("NBD_OPT_EXPORT_NAME enters transmission with simple replies")
    func exportName() throws {
        let f = try NBDFixture(blocks: 64)
        let c = try RawNBDClient(path: f.socketPath, go: false)
        try c.send(bytes(NBD.optionMagic) + bytes(NBD.Option.exportName) + bytes(UInt32(0)))
        let answer = try c.receive(10)
        #expect(integer(answer[0..<8]) == 64 * 512)
        try c.request(NBD.Command.read, handle: 1, offset: 0, length: 512)
        #expect(try c.reply() == .init(handle: 1, error: 0, data: []))
        #expect(try c.data(512) == [UInt8](repeating: 0, count: 512))
    }
}
