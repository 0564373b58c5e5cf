import Testing
import VFIOKit

/// A register declaration's checks survive the inlining that makes its offset an immediate.
@Suite struct RegisterTests {
    @Test func aRegisterKeepsItsOffset() {
        #expect(ScratchRegisters.quad.offset == 0x18)
        #expect(Register<ScratchRegisters, UInt16>(0xffe).offset == 0xffe)
    }

    @Test func aMisalignedRegisterStopsTheProgram() async {
        await #expect(processExitsWith: .failure) { _ = Register<ScratchRegisters, UInt32>(0x12) }
    }

    @Test func aRegisterOutsideItsLayoutStopsTheProgram() async {
        await #expect(processExitsWith: .failure) { _ = Register<ScratchRegisters, UInt64>(0x1000) }
        await #expect(processExitsWith: .failure) { _ = Register<ScratchRegisters, UInt32>(-4) }
    }
}
