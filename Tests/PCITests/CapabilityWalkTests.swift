import Testing
@testable import PCI

@Suite struct CapabilityWalkTests {
    @Test func walksTheStandardChainInOrder() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x01, at: 0x80)
        builder.addCapability(0x05, at: 0x50)
        builder.addCapability(0x11, at: 0xfc)
        let caps = try builder.config.capabilities
        #expect(
            caps.standard == [
                Capability(offset: 0x80, id: .powerManagement), Capability(offset: 0x50, id: .msi),
                Capability(offset: 0xfc, id: .msix),
            ])
        #expect(caps.extended.isEmpty)
        #expect(caps.problems.isEmpty)
        #expect(caps.first(.msi)?.offset == 0x50)
        #expect(caps.first(.pciExpress) == nil)
    }

    @Test func ignoresTheReservedLowPointerBits() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x01, at: 0x40)
        builder.addCapability(0x05, at: 0x50)
        builder.bytes[0x34] = 0x43
        builder.bytes[0x41] = 0x52
        #expect(try builder.config.capabilities.standard.map(\.offset) == [0x40, 0x50])
    }

    @Test func noListWhenStatusSaysSo() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x01, at: 0x40)
        builder.bytes[0x06] = 0
        let caps = try builder.config.capabilities
        #expect(caps.standard.isEmpty && caps.problems.isEmpty)
    }

    @Test func cardBusBridgesKeepTheirPointerAt0x14() throws {
        var builder = ConfigBuilder(headerType: 0x02)
        builder.addCapability(0x01, at: 0xa0)
        builder.bytes[0x34] = 0x80  // must not be followed for a CardBus bridge
        builder.bytes[0x80] = 0x05
        #expect(builder.bytes[0x14] == 0xa0)
        #expect(try builder.config.capabilities.standard == [Capability(offset: 0xa0, id: .powerManagement)])
    }

    @Test func aStandardLoopStopsAndIsRecorded() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x01, at: 0x40)
        builder.addCapability(0x05, at: 0x50)
        builder.bytes[0x51] = 0x40
        let caps = try builder.config.capabilities
        #expect(caps.standard.map(\.offset) == [0x40, 0x50])
        #expect(caps.problems == [.loop(.standard, pointerOffset: 0x51, target: 0x40)])
        #expect(caps.problems[0].description.contains("loops"))
    }

    /// One entry whose next pointer leads where no entry can stand (back to itself, into the
    /// header): the entry is kept and the problem recorded.
    @Test(arguments: [
        (0x60, UInt8(0x60), CapabilityChainProblem.loop(.standard, pointerOffset: 0x61, target: 0x60)),
        (0x40, 0x10, .pointerIntoHeader(.standard, pointerOffset: 0x41, target: 0x10)),
    ])
    func aBadStandardNextPointerIsRecorded(offset: Int, next: UInt8, problem: CapabilityChainProblem) throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x01, at: offset)
        builder.bytes[offset + 1] = next
        let caps = try builder.config.capabilities
        #expect(caps.standard.map(\.offset) == [offset])
        #expect(caps.problems == [problem])
    }

    @Test func aPointerPastTheBytesHeldIsRecorded() throws {
        var builder = ConfigBuilder(size: 64)
        builder.bytes[0x06] = 0x10
        builder.bytes[0x34] = 0x50
        let caps = try builder.config.capabilities
        #expect(caps.standard.isEmpty)
        #expect(caps.problems == [.pointerOutOfBounds(.standard, pointerOffset: 0x34, target: 0x50, size: 64)])
        #expect(caps.problems[0].description.contains("past the 64 config bytes held"))
    }

    @Test func unavailableBytesStopTheWalk() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x01, at: 0x40)
        builder.addCapability(0x05, at: 0x60)
        let caps = try builder.config(without: 0x61).capabilities
        #expect(caps.standard.map(\.offset) == [0x40])
        #expect(caps.problems == [.unavailable(.standard, offset: 0x61)])

        let tooShort = try ConfigSpace(bytes: [0x86, 0x80, 0, 0])
        #expect(tooShort.capabilities.problems == [.unavailable(.standard, offset: 0x0e)])
    }

    @Test func anAllOnesIDEndsTheWalk() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x01, at: 0x40)
        builder.addCapability(0xff, at: 0x48)
        let caps = try builder.config.capabilities
        #expect(caps.standard.map(\.offset) == [0x40])
        #expect(caps.problems == [.invalidEntry(.standard, offset: 0x48, value: 0xff)])
    }

    @Test func anUndefinedHeaderTypeHasNoChain() throws {
        var builder = ConfigBuilder(headerType: 0x03)
        builder.addCapability(0x01, at: 0x40)
        let caps = try builder.config.capabilities
        #expect(caps.standard.isEmpty)
        #expect(caps.problems == [.unknownHeaderLayout(type: 3)])
    }

    @Test func theLongestStandardChainIsWalkedWhole() throws {
        var builder = ConfigBuilder()
        for offset in stride(from: 0x40, to: 0x100, by: 4) { builder.addCapability(0x09, at: offset) }
        let caps = try builder.config.capabilities
        #expect(caps.standard.count == Capabilities.maximumStandardCount)
        #expect(caps.problems.isEmpty)
    }

    @Test func walksTheExtendedChainWithVersions() throws {
        var builder = ConfigBuilder(size: 4096)
        builder.addPCIExpress()
        builder.addExtendedCapability(0x0001, version: 2, at: 0x100)
        builder.addExtendedCapability(0x001b, version: 1, at: 0x230)
        builder.addExtendedCapability(0x0023, version: 1, at: 0x200)
        let caps = try builder.config.capabilities
        #expect(
            caps.extended == [
                ExtendedCapability(offset: 0x100, id: .advancedErrorReporting, version: 2),
                ExtendedCapability(offset: 0x230, id: .processAddressSpaceID, version: 1),
                ExtendedCapability(offset: 0x200, id: .designatedVendorSpecific, version: 1),
            ])
        #expect(caps.problems.isEmpty)
        #expect(caps.all(.designatedVendorSpecific).map(\.offset) == [0x200])
    }

    @Test func theExtendedChainNeedsAPCIExpressCapability() throws {
        var builder = ConfigBuilder(size: 4096)
        builder.addCapability(0x01, at: 0x40)
        builder.addExtendedCapability(0x0001, at: 0x100)
        let caps = try builder.config.capabilities
        #expect(caps.extended.isEmpty && caps.problems.isEmpty)
    }

    @Test func noExtendedSpaceMeansNoExtendedWalk() throws {
        var builder = ConfigBuilder(size: 256)
        builder.addPCIExpress()
        #expect(try builder.config.capabilities.problems.isEmpty)
        var empty = ConfigBuilder(size: 4096)
        empty.addPCIExpress()
        #expect(try empty.config.capabilities.extended.isEmpty)
        empty.set32(0x100, 0xffff_ffff)
        let caps = try empty.config.capabilities
        #expect(caps.extended.isEmpty && caps.problems.isEmpty)
    }

    @Test func anExtendedLoopStopsAndIsRecorded() throws {
        var builder = ConfigBuilder(size: 4096)
        builder.addPCIExpress()
        builder.addExtendedCapability(0x0001, at: 0x100)
        builder.addExtendedCapability(0x000e, at: 0x150)
        builder.addExtendedCapability(0x0010, at: 0x160)
        builder.set32(0x160, builder.header(at: 0x160) | 0x150 << 20)
        let caps = try builder.config.capabilities
        #expect(caps.extended.map(\.offset) == [0x100, 0x150, 0x160])
        #expect(caps.problems == [.loop(.extended, pointerOffset: 0x160, target: 0x150)])
    }

    /// One entry at 0x100 whose next pointer leads where no entry can stand (into the
    /// conventional space, past the bytes held, to an empty header): the entry is kept and the
    /// problem recorded.
    @Test(arguments: [
        (4096, 0x040, CapabilityChainProblem.pointerIntoHeader(.extended, pointerOffset: 0x100, target: 0x40)),
        (0x200, 0x400, .pointerOutOfBounds(.extended, pointerOffset: 0x100, target: 0x400, size: 0x200)),
        (4096, 0x300, .invalidEntry(.extended, offset: 0x300, value: 0)),
    ])
    func aBadExtendedNextPointerIsRecorded(size: Int, next: UInt32, problem: CapabilityChainProblem) throws {
        var builder = ConfigBuilder(size: size)
        builder.addPCIExpress()
        builder.addExtendedCapability(0x0001, at: 0x100)
        builder.set32(0x100, builder.header(at: 0x100) | next << 20)
        let caps = try builder.config.capabilities
        #expect(caps.extended.map(\.offset) == [0x100])
        #expect(caps.problems == [problem])
    }

    @Test func aHoleInTheExtendedChainIsRecorded() throws {
        var builder = ConfigBuilder(size: 4096)
        builder.addPCIExpress()
        builder.addExtendedCapability(0x0001, at: 0x100)
        builder.addExtendedCapability(0x0003, at: 0x140)
        let caps = try builder.config(without: 0x142).capabilities
        #expect(caps.extended.map(\.offset) == [0x100])
        #expect(caps.problems == [.unavailable(.extended, offset: 0x140)])
    }

    @Test func theLongestExtendedChainIsWalkedWhole() throws {
        var builder = ConfigBuilder(size: 4096)
        builder.addPCIExpress()
        for offset in stride(from: 0x100, to: 0x1000, by: 4) { builder.addExtendedCapability(0x000b, at: offset) }
        let caps = try builder.config.capabilities
        #expect(caps.extended.count == Capabilities.maximumExtendedCount)
        #expect(caps.problems.isEmpty)
    }
}
