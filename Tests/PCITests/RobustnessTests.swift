import Testing
@testable import PCI

/// The fuzzing of this layer: seeded random damage to fixtures and corpus devices. Whatever the
/// bytes, walks end with bounded, in-bounds output, and decoding and reporting never trap.
@Suite struct RobustnessTests {
    static let iterations = 4000

    /// Config spaces to damage: the own fixtures always, and the corpus devices when present.
    static func seeds() throws -> [[UInt8?]] {
        var seeds = [Fixtures.richDevice.bytes.map { UInt8?($0) }]
        var cardBus = ConfigBuilder(headerType: 2)
        cardBus.addCapability(0x01, at: 0xa0, body: le16(2) + le16(0))
        cardBus.addCapability(0x05, at: 0x80, body: le16(0))
        seeds.append(cardBus.bytes.map { UInt8?($0) })
        for name in Corpus.dumpNames {
            for device in try Corpus.dump(name).devices {
                seeds.append((0..<device.config.size).map { try? device.config.uint8(at: $0) })
            }
        }
        return seeds
    }

    @Test func damagedConfigSpacesWalkBoundedAndNeverTrap() throws {
        let seeds = try Self.seeds()
        var random = SeededGenerator(seed: 0x5eed_0001)
        var problemsSeen = Set<String>()
        for _ in 0..<Self.iterations {
            var bytes = seeds[Int.random(in: 0..<seeds.count, using: &random)]
            let caps = try ConfigSpace(partialBytes: bytes).capabilities
            let targets =
                [0x06, 0x0e, 0x14, 0x34] + caps.standard.flatMap { [$0.offset, $0.offset + 1] }
                + caps.extended.flatMap { [$0.offset, $0.offset + 2, $0.offset + 3] }
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                Self.damage(
                    &bytes, targets: targets, pointers: caps.standard.map(\.offset) + caps.extended.map(\.offset),
                    using: &random)
            }
            let config = try ConfigSpace(partialBytes: bytes)
            let walked = config.capabilities
            Self.checkInvariants(walked, config)
            problemsSeen.formUnion(walked.problems.compactMap { Mirror(reflecting: $0).children.first?.label })
            let report = ConfigSpaceReport(address: try PCIAddress(parsing: "00:00.0"), config: config)
            #expect(report.capabilities.count == walked.standard.count + walked.extended.count)
            #expect(!report.text.isEmpty)
        }
        // The damage reached the interesting paths, not just the happy one.
        #expect(problemsSeen.count >= 4, "problems seen: \(problemsSeen)")
    }

    static func checkInvariants(_ caps: Capabilities, _ config: ConfigSpace) {
        #expect(caps.standard.count <= Capabilities.maximumStandardCount)
        #expect(caps.extended.count <= Capabilities.maximumExtendedCount)
        #expect(Set(caps.standard.map(\.offset)).count == caps.standard.count)
        #expect(Set(caps.extended.map(\.offset)).count == caps.extended.count)
        for cap in caps.standard {
            #expect((0x40...0xfc).contains(cap.offset) && cap.offset % 4 == 0)
            #expect(config.isAvailable(cap.offset..<cap.offset + 2))
        }
        for cap in caps.extended {
            #expect((0x100...0xffc).contains(cap.offset) && cap.offset % 4 == 0)
            #expect(config.isAvailable(cap.offset..<cap.offset + 4))
        }
        #expect(caps.problems.count <= 2)
    }

    /// One random change: a byte anywhere, a byte at a pointer or header, a pointer aimed at
    /// another entry (to make loops), a hole, or a cut.
    static func damage(_ bytes: inout [UInt8?], targets: [Int], pointers: [Int], using random: inout SeededGenerator) {
        guard !bytes.isEmpty else { return }
        switch Int.random(in: 0..<6, using: &random) {
        case 0:
            bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
        case 1:
            let target = targets.randomElement(using: &random)!
            if target < bytes.count { bytes[target] = UInt8.random(in: 0...255, using: &random) }
        case 2:
            // Aim a standard next pointer, or an extended header's pointer bits, at an existing entry.
            guard let from = pointers.randomElement(using: &random), let to = pointers.randomElement(using: &random)
            else { return }
            if from < 0x100, to < 0x100, from + 1 < bytes.count {
                bytes[from + 1] = UInt8(to)
            } else if from >= 0x100, from + 3 < bytes.count {
                bytes[from + 2] = UInt8(truncatingIfNeeded: (bytes[from + 2] ?? 0) & 0x0f | UInt8(to & 0xf) << 4)
                bytes[from + 3] = UInt8(truncatingIfNeeded: to >> 4)
            }
        case 3:
            let start = Int.random(in: 0..<bytes.count, using: &random)
            let end = min(bytes.count, start + Int.random(in: 1...8, using: &random))
            for i in start..<end { bytes[i] = nil }
        case 4:
            bytes.removeLast(Int.random(in: 0..<bytes.count, using: &random))
        default:
            let target = targets.randomElement(using: &random)!
            if target < bytes.count { bytes[target] = [0x00, 0xff, 0x40, 0x3c][Int.random(in: 0..<4, using: &random)] }
        }
    }

    @Test func damagedDumpTextParsesOrFailsWithATypedError() throws {
        var texts = [Fixtures.dumpText(Fixtures.richDevice), DumpParserTests.virtioNet]
        for name in ["cap-MSI-mapping", "cap-debug-port", "cap-pci-af", "cap-dpc"] where Corpus.isPresent {
            texts.append(try Corpus.text(name))
        }
        var random = SeededGenerator(seed: 0x5eed_0002)
        let alphabet = Array("0123456789abcdefxz: .\n\t\r-")
        var outcomes = (parsed: 0, rejected: 0)
        for _ in 0..<2000 {
            var characters = Array(texts.randomElement(using: &random)!)
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                guard !characters.isEmpty else { break }
                let at = Int.random(in: 0..<characters.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: characters[at] = alphabet.randomElement(using: &random)!
                case 1: characters.insert(alphabet.randomElement(using: &random)!, at: at)
                case 2: characters.remove(at: at)
                default: characters.removeLast(characters.count - at)
                }
            }
            do {
                let dump = try PCIDump(parsing: String(characters), name: "fuzz")
                outcomes.parsed += 1
                for device in dump.devices {
                    #expect(device.config.size <= ConfigSpace.maximumSize)
                    Self.checkInvariants(device.config.capabilities, device.config)
                }
            } catch {
                outcomes.rejected += 1
                #expect(!error.description.isEmpty)
            }
        }
        #expect(outcomes.parsed > 100 && outcomes.rejected > 100, "parsed \(outcomes.parsed), rejected \(outcomes.rejected)")
    }
}
