import CVFIO
import Testing

/// The demux's scan of up to 64 device-written words (`cvfio_nonzero64`) against a plain loop.
@Suite struct NonZeroScanTests {
    @Test func everyCountAndPatternMatchesAWordByWordScan() {
        var generator = SystemRandomNumberGenerator()
        var words = [UInt32](repeating: 0, count: 64 + 1)
        for count in 1...64 {
            for _ in 0..<200 {
                for i in words.indices {
                    words[i] = Int.random(in: 0..<8, using: &generator) == 0 ? UInt32.random(in: 1...UInt32.max, using: &generator) : 0
                }
                // A word past `count` is never looked at.
                words[count] = 1
                let expected = (0..<count).reduce(UInt64(0)) { $0 | (words[$1] != 0 ? 1 << UInt64($1) : 0) }
                #expect(words.withUnsafeBufferPointer { cvfio_nonzero64($0.baseAddress, UInt32(count)) } == expected)
            }
        }
    }
}
