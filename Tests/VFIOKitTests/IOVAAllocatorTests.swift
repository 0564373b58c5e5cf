import Testing
@testable import VFIOKit

@Suite struct IOVAAllocatorTests {
    @Test func allocatesAlignedInsideRangesAndNeverAtZero() throws {
        var a = IOVAAllocator(ranges: [0...0xfedf_ffff, 0xfef0_0000...0xffff_ffff_ffff], alignment: 4096, mappingLimit: 100)
        let first = try a.allocate(size: 1)
        #expect(first == 4096)
        let second = try a.allocate(size: 5000)
        #expect(second == 8192)
        #expect(a.length(at: second) == 8192)
        let third = try a.allocate(size: 4096)
        #expect(third == 16384)
    }

    @Test func skipsTheMSIWindowHole() throws {
        var a = IOVAAllocator(ranges: [0...0x2fff, 0x10000...0x1ffff], alignment: 4096, mappingLimit: 10)
        _ = try a.allocate(size: 4096)  // 0x1000
        let next = try a.allocate(size: 8192)  // 0x2000 has only one page left
        #expect(next == 0x10000)
    }

    @Test func honoursTheDeviceLimit() throws {
        var a = IOVAAllocator(ranges: [0...UInt64.max], alignment: 4096, mappingLimit: 10)
        let iova = try a.allocate(size: 4096, below: 1 << 28)
        #expect(iova + 4096 <= 1 << 28)
        #expect(throws: VFIOError.iovaSpaceExhausted(size: 1 << 28, limit: 1 << 28)) {
            try a.allocate(size: 1 << 28, below: 1 << 28)
        }
    }

    @Test func enforcesTheKernelMappingLimit() throws {
        var a = IOVAAllocator(ranges: [0...UInt64.max], alignment: 4096, mappingLimit: 2)
        _ = try a.allocate(size: 1)
        let b = try a.allocate(size: 1)
        #expect(throws: VFIOError.dmaMappingLimit(2)) { try a.allocate(size: 1) }
        try a.release(b)
        _ = try a.allocate(size: 1)
    }

    @Test func releaseCoalescesSoTheWholeSpaceIsReusable() throws {
        var a = IOVAAllocator(ranges: [0...0x4fff], alignment: 4096, mappingLimit: 10)
        let x = try a.allocate(size: 4096)
        let y = try a.allocate(size: 4096)
        let z = try a.allocate(size: 4096)
        #expect(throws: VFIOError.self) { try a.allocate(size: 8192) }
        try a.release(y)
        try a.release(x)
        try a.release(z)
        #expect(a.count == 0)
        #expect(try a.allocate(size: 0x4000) == 0x1000)
    }

    @Test func rejectsUnknownReleaseAndZeroSize() {
        var a = IOVAAllocator(ranges: [0...0xffff], alignment: 4096, mappingLimit: 10)
        #expect(throws: VFIOError.unknownMapping(iova: 0x3000, length: 0)) { try a.release(0x3000) }
        #expect(throws: VFIOError.self) { try a.allocate(size: 0) }
    }
}
