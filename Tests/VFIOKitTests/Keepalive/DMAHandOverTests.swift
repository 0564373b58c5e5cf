#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import SystemPackage
import Testing
@testable import VFIOKit
import VFIOMock

/// DMA buffers handed over and taken back: their memory, contents and device addresses
/// survive, the IOMMU keeps mapping them in between, and what cannot be adopted says why.
@Suite struct DMAHandOverTests {
    static let translating: [Backend] = [.legacy, .iommufd]

    /// A mock machine with a memory device open on `backend`, bus mastering on, its closes seen.
    final class Rig {
        let machine: MockMachine
        let bus: DeviceBus
        let device: PCIDevice
        let closed: Closes

        init(_ backend: Backend) throws {
            machine = MockMachine(for: backend)
            bus = try machine.kernel.plug(Devices.memory(), at: MockMachine.primary)
            let closed = Closes()
            self.closed = closed
            let seam = InterposedKernel(machine.kernel) { call in
                if case .close(let fd) = call { closed.withLock { $0.append(fd) } }
            }
            device = try PCIDevice.open(MockMachine.primary, backend: backend, system: seam)
            try device.setBusMaster(true)
        }

        func deviceRead(count: Int, at address: UInt64) -> [UInt8]? {
            var bytes = [UInt8](repeating: 0, count: count)
            return bytes.withUnsafeMutableBytes { bus.dmaRead(iova: address, into: $0) } ? bytes : nil
        }

        /// Whether `fd` was closed since the last ``forgetCloses()`` (numbers are reused).
        func wasClosed(_ fd: FileDescriptor) -> Bool { closed.withLock { $0.contains(fd) } }

        func forgetCloses() { closed.withLock { $0.removeAll() } }

        final class Closes: Sendable {
            private let seen = Mutex<[FileDescriptor]>([])
            func withLock<R>(_ body: (inout [FileDescriptor]) -> R) -> R { seen.withLock { body(&$0) } }
        }
    }

    @Test(arguments: translating)
    func handedOverBuffersComeBackWithTheirContentsAndAddresses(_ backend: Backend) throws {
        let rig = try Rig(backend)
        defer { rig.device.close() }
        let a = try rig.device.dma.allocate(4096)
        let b = try rig.device.dma.allocate(3 * 4096)
        for i in 0..<a.count { a.bytes[i] = UInt8(truncatingIfNeeded: i) }
        for i in 0..<b.count { b.bytes[i] = UInt8(truncatingIfNeeded: 7 &* i) }
        let (addressA, addressB) = (a.deviceAddress, b.deviceAddress)
        let pieces = [try a.handOver(), try b.handOver()]
        #expect(pieces.map(\.deviceAddress) == [addressA, addressB] && pieces.map(\.length) == [4096, 3 * 4096])
        #expect(rig.device.dma.handedOver == pieces.sorted { $0.deviceAddress < $1.deviceAddress })
        // Nobody owns them, and the device still reaches them: the IOMMU mapping stayed.
        #expect(rig.machine.kernel.dmaMappings(of: MockMachine.primary).count == 2)
        #expect(rig.deviceRead(count: 16, at: addressB + 4096) == (4096..<4112).map { UInt8(truncatingIfNeeded: 7 &* $0) })
        let written: [UInt8] = [0xde, 0xad]
        #expect(written.withUnsafeBytes { rig.bus.dmaWrite(iova: addressA + 10, from: $0) })
        // A second allocation does not land on a piece's IOVA.
        let other = try rig.device.dma.allocate(4096)
        #expect(other.deviceAddress != addressA && other.deviceAddress != addressB)

        try rig.device.dma.adopt(pieces: pieces)
        rig.forgetCloses()
        let backA = try rig.device.dma.claim(pieces[0])
        let backB = try rig.device.dma.claim(pieces[1])
        #expect(rig.device.dma.handedOver.isEmpty)
        #expect(backA.deviceAddress == addressA && backB.deviceAddress == addressB)
        #expect(Array(backA.bytes[10..<12]) == written)
        #expect(backA.bytes.indices.allSatisfy { $0 == 10 || $0 == 11 || backA.bytes[$0] == UInt8(truncatingIfNeeded: $0) })
        #expect(backB.bytes.indices.allSatisfy { backB.bytes[$0] == UInt8(truncatingIfNeeded: 7 &* $0) })
        try backA.free()
        try backB.free()
        try other.free()
        #expect(rig.machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        #expect(pieces.allSatisfy { rig.wasClosed($0.file) })
        #expect(rig.machine.kernel.dmaFaults.isEmpty)
    }

    @Test(arguments: translating)
    func piecesNobodyClaimsAreReleased(_ backend: Backend) throws {
        let rig = try Rig(backend)
        defer { rig.device.close() }
        let piece = try rig.device.dma.allocate(8192).handOver()
        #expect(rig.device.dma.mappingCount == 1)
        rig.forgetCloses()
        #expect(rig.device.dma.releaseHandedOver() == 1)
        #expect(rig.device.dma.handedOver.isEmpty && rig.device.dma.mappingCount == 0)
        #expect(rig.machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        #expect(rig.wasClosed(piece.file))
        #expect(rig.deviceRead(count: 4, at: piece.deviceAddress) == nil)
        // unmapAll, before a host resets the device, releases them too.
        let second = try rig.device.dma.allocate(4096).handOver()
        rig.forgetCloses()
        rig.device.dma.unmapAll()
        #expect(rig.device.dma.handedOver.isEmpty && rig.machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        #expect(rig.wasClosed(second.file))
        // Closing the context closes the files of pieces nobody claimed.
        let third = try rig.device.dma.allocate(4096).handOver()
        rig.forgetCloses()
        rig.device.close()
        #expect(rig.wasClosed(third.file))
    }

    @Test func aReservedRangeCannotBeAllocatedOrReservedTwice() throws {
        var a = IOVAAllocator(ranges: [0...0xf_ffff], alignment: 4096, mappingLimit: 1000)
        try a.reserve(0x4000, size: 8192)
        #expect(a.length(at: 0x4000) == 8192)
        #expect(throws: VFIOError.iovaUnavailable(iova: 0x5000, size: 4096, reason: "it overlaps a range already in use")) {
            try a.reserve(0x5000, size: 4096)
        }
        #expect(throws: VFIOError.iovaUnavailable(iova: 0x10_0000, size: 4096, reason: "it lies outside the IOMMU's IOVA ranges")) {
            try a.reserve(0x10_0000, size: 4096)
        }
        #expect(throws: VFIOError.self) { try a.reserve(0x8001, size: 4096) }
        var handedOut: [UInt64] = []
        while let iova = try? a.allocate(size: 4096) { handedOut.append(iova) }
        #expect(!handedOut.contains(0x4000) && !handedOut.contains(0x5000))
        #expect(handedOut.count == 0x100 - 1 - 2)
        try a.release(0x4000)
        try a.reserve(0x4000, size: 4096)
    }

    @Test func aNewSpaceAdoptsPiecesAtTheirAddressesWithoutMappingThemAgain() throws {
        let kernel = MockKernel()
        let mapper = RecordingMapper()
        let space = DMASpace(system: kernel, logger: .vfiokitSilent)
        space.install(mapper, ranges: [0...0xfff_ffff], alignment: 4096)
        let file = try kernel.memoryFile(name: "predecessor", size: 8192, flags: 0)
        let view = try kernel.mmap(length: 8192, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: file, offset: 0)
        for i in 0..<8192 { view.storeBytes(of: UInt8(truncatingIfNeeded: i / 3), toByteOffset: i, as: UInt8.self) }
        try kernel.munmap(view, length: 8192)
        let piece = DMAPiece(file: file, length: 8192, deviceAddress: 0x20_0000)

        try space.adopt(pieces: [piece])
        #expect(space.handedOver == [piece] && space.mappingCount == 1)
        let spare = try kernel.memoryFile(name: "spare", size: 4096, flags: 0)
        defer { try? kernel.close(spare) }
        let overlapping = DMAPiece(file: spare, length: 4096, deviceAddress: 0x20_1000)
        #expect(throws: VFIOError.dmaPieceRefused(overlapping, reason: "it overlaps a range already in use")) {
            try space.adopt(pieces: [overlapping])
        }
        let buffer = try space.claim(piece)
        #expect(buffer.deviceAddress == 0x20_0000 && buffer.count == 8192)
        #expect(buffer.bytes.indices.allSatisfy { buffer.bytes[$0] == UInt8(truncatingIfNeeded: $0 / 3) })
        let fresh = try space.allocate(4096)
        #expect(fresh.deviceAddress + 4096 <= 0x20_0000 || fresh.deviceAddress >= 0x20_2000)
        #expect(mapper.calls.withLock { $0 } == ["map 0x\(String(fresh.deviceAddress, radix: 16))"])
        let freshAddress = fresh.deviceAddress
        try buffer.free()
        try fresh.free()
        #expect(mapper.calls.withLock { $0 }.suffix(2) == ["unmap 0x200000", "unmap 0x\(String(freshAddress, radix: 16))"])
    }

    @Test func badPiecesAreRefusedAndSayWhy() throws {
        let rig = try Rig(.legacy)
        defer { rig.device.close() }
        let dma = rig.device.dma
        let live = try dma.allocate(4096)
        let good = try dma.allocate(4096).handOver()
        let file = good.file
        func refusal(_ pieces: [DMAPiece]) -> String? {
            do throws(VFIOError) { try dma.adopt(pieces: pieces) } catch { return error.description }
            return nil
        }
        let crooked = DMAPiece(file: file, length: 100, deviceAddress: 0x40_0000)
        #expect(refusal([crooked])?.contains("its length is not a positive multiple of the IOMMU's 4096-byte pages") == true)
        // Files of the test's own: a piece adopted is the space's to close.
        let spare = try rig.machine.kernel.memoryFile(name: "spare", size: 4096, flags: 0)
        defer { try? rig.machine.kernel.close(spare) }
        let unmappable = try rig.machine.kernel.eventfd(initialValue: 0, flags: 0)
        let overlapping = DMAPiece(file: spare, length: 4096, deviceAddress: live.deviceAddress)
        #expect(refusal([overlapping])?.contains("overlaps a range already in use") == true)
        let sameFile = DMAPiece(file: file, length: 4096, deviceAddress: 0x40_0000)
        #expect(refusal([sameFile])?.contains("give each piece a file of its own") == true)
        let otherAtSameIOVA = DMAPiece(file: file, length: 8192, deviceAddress: good.deviceAddress)
        #expect(refusal([otherAtSameIOVA])?.contains("the context holds another piece at that IOVA") == true)
        // All or nothing: a good new piece before a bad one is not kept.
        let eventPiece = DMAPiece(file: unmappable, length: 4096, deviceAddress: 0x50_0000)
        #expect(refusal([eventPiece, crooked]) != nil)
        #expect(dma.handedOver == [good])
        // A piece whose file cannot be mapped (an eventfd) is refused when claimed, and stays.
        try dma.adopt(pieces: [eventPiece])
        #expect(throws: VFIOError.dmaPieceRefused(eventPiece, reason: "mapping its file failed: No such device (errno 19)")) {
            try dma.claim(eventPiece)
        }
        #expect(dma.handedOver == [good, eventPiece])
        #expect(throws: VFIOError.dmaPieceRefused(crooked, reason: "the context holds no piece at that IOVA: adopt it first")) {
            try dma.claim(crooked)
        }
        let message = VFIOError.dmaPieceRefused(good, reason: "x").description
        #expect(message.contains("4096 bytes at IOVA 0x\(String(good.deviceAddress, radix: 16)) (memfd \(file.rawValue) at offset 0)"))
        #expect(message.contains("start the driver afresh instead"))
        try live.free()
    }

    @Test func withoutAnIOMMUABufferCannotBeHandedOver() throws {
        let machine = MockMachine(for: .noIOMMU)
        let device = try machine.open(Devices.memory(), on: .noIOMMU)
        defer { device.close() }
        let buffer = try device.dma.allocate(4096)
        var refusal: VFIOError?
        do throws(VFIOError) { _ = try buffer.handOver() } catch { refusal = error }
        #expect(refusal?.description.contains("its memory is not in a memfd (there is no IOMMU)") == true)
        #expect(device.dma.mappingCount == 0 && device.dma.handedOver.isEmpty)
    }
}

/// A translating mapper that records what it is asked and maps nothing.
final class RecordingMapper: DMAMapper, Sendable {
    let calls = Mutex<[String]>([])
    var translates: Bool { true }
    var mappingLimit: Int { 100 }

    func map(_ memory: UnsafeMutableRawBufferPointer, at iova: UInt64) throws(VFIOError) -> UInt64 {
        calls.withLock { $0.append("map 0x\(String(iova, radix: 16))") }
        return iova
    }

    func unmap(iova: UInt64, length: Int) throws(VFIOError) {
        calls.withLock { $0.append("unmap 0x\(String(iova, radix: 16))") }
    }

    func close() {}
}
