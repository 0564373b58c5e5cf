import Foundation
import Testing
@testable import PCI

/// Every dump of pciutils' corpus, walked and compared with the `.caps.txt` libpci produced.
@Suite(.enabled(if: Corpus.isPresent, Corpus.absentNote))
struct CorpusWalkConformanceTests {
    @Test func corpusIsComplete() {
        #expect(Corpus.dumpNames.count == 41, "expected pciutils' 41 dumps, found \(Corpus.dumpNames.count)")
    }

    /// libpci's listing format: a device line, then one line per capability in walk order.
    static func listing(
        _ device: PCIDump.Device, standard: [Capability], extended: [ExtendedCapability]
    ) throws -> [String] {
        let config = device.config
        var lines = [
            "\(device.address) \(hexString(try config.vendorID, width: 4)):\(hexString(try config.deviceID, width: 4)) "
                + "class=\(hexString(try config.classCode.classID, width: 4)) "
                + "hdr=\(hexString(try config.headerType.type, width: 2)) cfg=\(config.size)"
        ]
        lines += standard.map { "  cap  0x\(hexString($0.offset, width: 3)) id=0x\(hexString($0.id.rawValue, width: 2))" }
        lines += extended.map {
            "  ecap 0x\(hexString($0.offset, width: 3)) id=0x\(hexString($0.id.rawValue, width: 4)) v=\($0.version)"
        }
        return lines
    }

    @Test(arguments: Corpus.dumpNames)
    func capabilityWalkMatchesLibpci(_ name: String) throws {
        let dump = try Corpus.dump(name)
        let expected = try Corpus.text(name + ".caps.txt").split(separator: "\n").map(String.init)
        let lspci = try LSPCIText(Corpus.text(name + ".lspci-n.txt"))
        var actual: [String] = []
        for device in dump.devices.sorted(by: { $0.address < $1.address }) {
            let caps = device.config.capabilities
            if try device.config.headerType.layout == .cardBusBridge {
                // libpci 3.9 reads a CardBus bridge's pointer at 0x34, not 0x14, and lists no capabilities;
                // lspci's text (which uses the right pointer) is the reference for them.
                let listed = lspci.capabilities(of: device.address).filter { !$0.extended }.map(\.offset)
                #expect(caps.standard.map(\.offset) == listed, "\(name) \(device.address)")
                #expect(!caps.standard.isEmpty, "\(name) \(device.address): the CardBus case should find capabilities")
                actual += try Self.listing(device, standard: [], extended: caps.extended)
            } else {
                actual += try Self.listing(device, standard: caps.standard, extended: caps.extended)
            }
        }
        #expect(actual == expected)
    }
}
