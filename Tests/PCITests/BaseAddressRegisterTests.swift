import Testing
@testable import PCI

@Suite struct BaseAddressRegisterTests {
    @Test func decodesEveryKind() throws {
        var builder = ConfigBuilder()
        builder.set32(0x10, 0xfff4_000c)  // 64-bit prefetchable, low half
        builder.set32(0x14, 0x0000_206f)  // its high half
        builder.set32(0x18, 0xfc40_2000)  // 32-bit non-prefetchable
        builder.set32(0x1c, 0)  // unassigned
        builder.set32(0x20, 0x0000_e001)  // I/O
        builder.set32(0x24, 0x000c_8002)  // below 1 MiB
        let bars = try builder.config.baseAddressRegisters()
        #expect(
            bars == [
                BaseAddressRegister(index: 0, kind: .memory64, isPrefetchable: true, base: 0x206f_fff4_0000),
                BaseAddressRegister(index: 2, kind: .memory32, isPrefetchable: false, base: 0xfc40_2000),
                BaseAddressRegister(index: 4, kind: .io, isPrefetchable: false, base: 0xe000),
                BaseAddressRegister(index: 5, kind: .memoryBelow1MiB, isPrefetchable: false, base: 0xc_8000),
            ])
        #expect(bars[0].description == "BAR0: memory64 prefetchable at 0x206ffff40000")
    }

    @Test func bridgesHaveTwoSlotsAndCardBusOne() throws {
        var bridge = ConfigBuilder(headerType: 1)
        bridge.set32(0x10, 0xf000_0000)
        bridge.set32(0x14, 0xf100_0000)
        bridge.set32(0x18, 0x0102_0100)  // bus numbers, not a BAR
        #expect(try bridge.config.baseAddressRegisters().map(\.index) == [0, 1])

        var cardBus = ConfigBuilder(headerType: 2)
        cardBus.set32(0x10, 0xfc40_2000)
        cardBus.set32(0x14, 0x0200_00a0)  // capability pointer and secondary status, not a BAR
        #expect(
            try cardBus.config.baseAddressRegisters() == [
                BaseAddressRegister(index: 0, kind: .memory32, isPrefetchable: false, base: 0xfc40_2000)
            ])
    }

    @Test func malformedBARsAreErrors() throws {
        var lastSlot64 = ConfigBuilder()
        lastSlot64.set32(0x24, 0x0000_0004)
        #expect(throws: ConfigSpaceError.malformed(offset: 0x24, reason: "BAR5 is 64-bit but is the last BAR slot")) {
            try lastSlot64.config.baseAddressRegisters()
        }
        var reserved = ConfigBuilder()
        reserved.set32(0x10, 0x0000_0006)
        #expect(throws: ConfigSpaceError.malformed(offset: 0x10, reason: "BAR0 uses the reserved memory type 11b")) {
            try reserved.config.baseAddressRegisters()
        }
    }

    @Test func aBARTheSourceDoesNotHoldIsUnavailable() throws {
        var builder = ConfigBuilder(size: 0x18)
        builder.set32(0x14, 0x0000_000c)  // 64-bit; its high half at 0x18 is not held
        #expect(throws: ConfigSpaceError.unavailable(offset: 0x18, width: 4)) {
            try builder.config.baseAddressRegisters()
        }
    }
}
