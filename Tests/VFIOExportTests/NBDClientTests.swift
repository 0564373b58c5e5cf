import Foundation
import Testing
@testable import VFIOExport

/// Real NBD clients from Debian (libnbd-bin, qemu-utils) against the simulated controller's
/// export: nobody here wrote them, and they check every byte.
@Suite("NBD export: real clients", .serialized)
struct NBDClientTests {
    @Test(
        "nbdinfo --json: size, block sizes and flags as the namespace has them",
        .enabled(if: Tool.has("nbdinfo"), "nbdinfo (Debian's libnbd-bin) is not installed"))
    func nbdinfo() throws {
        let f = try NBDFixture()
        let r = try Tool.run("nbdinfo", ["--json", f.uri])
        #expect(r.status == 0, "\(r.error)")
        let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as! [String: Any]
        let export = (json["exports"] as! [[String: Any]])[0]
        #expect(export["export-size"] as? Int == 131_072 * 512)
        #expect(export["block_size_minimum"] as? Int == 512)
        #expect(export["block_size_preferred"] as? Int == 4096)
        #expect(export["block_size_maximum"] as? Int == f.server.geometry.maxTransfer)
        #expect(export["is_read_only"] as? Bool == false)
        #expect(export["can_flush"] as? Bool == true && export["can_fua"] as? Bool == true)
        #expect(export["can_multi_conn"] as? Bool == true)
        #expect(json["structured"] as? Bool == true)
    }

    @Test(
        "nbdcopy 64 MiB of random data in and back out: byte-identical; qemu-img compare: identical",
        .enabled(if: Tool.has("nbdcopy", "qemu-img"), "nbdcopy (libnbd-bin) or qemu-img (qemu-utils) is not installed"))
    func copyRoundTrip() throws {
        let f = try NBDFixture()
        let source = f.directory + "/source", back = f.directory + "/back"
        var random = [UInt8](repeating: 0, count: 64 << 20)
        var generator = SystemRandomNumberGenerator()
        random.withUnsafeMutableBytes { b in
            for i in stride(from: 0, to: b.count, by: 8) { b.storeBytes(of: generator.next() as UInt64, toByteOffset: i, as: UInt64.self) }
        }
        try Data(random).write(to: URL(fileURLWithPath: source))
        let into = try Tool.run("nbdcopy", [source, f.uri])
        #expect(into.status == 0, "\(into.error)")
        #expect(f.namespace.read(lba: 0, count: 131_072) == random, "the namespace holds the file")
        let out = try Tool.run("nbdcopy", [f.uri, back])
        #expect(out.status == 0, "\(out.error)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: back)) == Data(random))
        let compare = try Tool.run("qemu-img", ["compare", "-f", "raw", "-F", "raw", source, f.uri])
        #expect(compare.status == 0, "\(compare.output)\(compare.error)")
        #expect(compare.output.contains("Images are identical"))
        let s = f.server.statistics
        #expect(s.bytesWritten >= 64 << 20 && s.bytesRead >= 2 * (64 << 20), "\(s)")
        #expect(s.errors == 0 && s.inFlight == 0)
    }

    @Test(
        "qemu-io: a write at the last block reads back; a read past the end fails and changes nothing; discard; write -z",
        .enabled(if: Tool.has("qemu-io"), "qemu-io (qemu-utils) is not installed"))
    func qemuIO() throws {
        let f = try NBDFixture(blocks: 2048)
        let last = (2048 - 1) * 512
        let w = try Tool.run("qemu-io", ["-f", "raw", "-c", "write -P 0xa5 \(last) 512", "-c", "read -P 0xa5 \(last) 512", f.uri])
        #expect(w.status == 0 && !w.output.contains("failed") && !w.output.contains("Pattern verification failed"), "\(w.output)\(w.error)")
        #expect(f.namespace.read(lba: 2047, count: 1) == [UInt8](repeating: 0xa5, count: 512))
        #expect(f.namespace.read(lba: 2046, count: 1) == [UInt8](repeating: 0, count: 512), "the block before is untouched")

        f.namespace.write(lba: 0, pattern(2048 * 512, seed: 3))
        let before = f.namespace.read(lba: 0, count: 2048)
        let past = try Tool.run("qemu-io", ["-f", "raw", "-c", "read \(2048 * 512) 512", "-c", "write -P 0x11 \(2048 * 512) 512", f.uri])
        #expect(past.output.contains("read failed") && past.output.contains("write failed"), "\(past.output)\(past.error)")
        #expect(f.namespace.read(lba: 0, count: 2048) == before, "nothing changed")

        let discard = try Tool.run("qemu-io", ["-f", "raw", "-c", "discard 0 4096", f.uri])
        #expect(discard.status == 0 && !discard.output.contains("failed"), "\(discard.output)\(discard.error)")
        let zero = try Tool.run("qemu-io", ["-f", "raw", "-c", "write -z 4096 8192", "-c", "read -P 0 4096 8192", f.uri])
        #expect(zero.status == 0 && !zero.output.contains("failed"), "\(zero.output)\(zero.error)")
        #expect(f.namespace.read(lba: 8, count: 16) == [UInt8](repeating: 0, count: 8192))
        #expect(f.namespace.read(lba: 24, count: 8) == Array(before[24 * 512..<32 * 512]), "past the zeroed range is untouched")
    }

    @Test(
        "127.0.0.1 with port 0: the kernel's port is the URI's; nbdinfo reaches the export over TCP",
        .enabled(if: Tool.has("nbdinfo"), "nbdinfo (Debian's libnbd-bin) is not installed"))
    func tcp() throws {
        let f = try NBDFixture(blocks: 2048) { $0.tcp = (host: "127.0.0.1", port: 0) }
        let uri = try #require(f.server.tcpURI)
        #expect(uri.hasPrefix("nbd://127.0.0.1:") && !uri.hasSuffix(":0"))
        let r = try Tool.run("nbdinfo", ["--size", uri])
        #expect(r.status == 0 && r.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(2048 * 512)", "\(r.output)\(r.error)")
        #expect(f.server.uri == f.uri, "the Unix socket stays the primary URI")
    }
}
