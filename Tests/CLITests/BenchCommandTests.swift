import Foundation
import Testing

/// `vfiokit bench`: the shape of its JSON and the allocation figures. Timings are never
/// asserted: they belong to the benchmark's own output.
@Suite struct BenchCommandTests {
    struct MMIO: Decodable {
        let iterations: Int
        let read_ns, write_ns, c_read_ns, c_write_ns, read_ratio, write_ratio: Double
        let read_allocations, write_allocations: Int?
        let allocations_not_counted: String?
    }

    struct IRQ: Decodable {
        let samples: Int
        let p50_ns, p99_ns, c_p50_ns, c_p99_ns: UInt64
        let p50_ratio, p99_ratio: Double
        let dispatches: Int
        let dispatch_allocations, dispatch_allocations_total: Int?
        let allocations_not_counted: String?
    }

    static let mmio = ["bench", "mmio", "--json", "--iterations", "100000", "--rounds", "1"]
    static let irq = ["bench", "irq", "--json", "--samples", "200", "--rounds", "2"]

    static func decode<T: Decodable>(_ type: T.Type, _ arguments: [String], environment: [String: String] = [:]) throws -> T {
        let result = try runVFIOKit(arguments, environment: environment)
        #expect(result.status == 0, "stderr: \(result.error)")
        return try JSONDecoder().decode(type, from: Data(result.output.utf8))
    }

    /// The interposer `vfiokit` links, by its real path (as the process maps it).
    static func interposer() throws -> String {
        try vfiokitExecutable().deletingLastPathComponent()
            .appendingPathComponent("libMallocInterposerSwift.so").resolvingSymlinksInPath().path
    }

    @Test func mmioPrintsRatiosAndAllocationsAsNumbers() throws {
        let result = try Self.decode(MMIO.self, Self.mmio)
        #expect(result.iterations == 100_000)
        #expect(result.read_allocations != nil && result.write_allocations != nil)
        #expect(result.allocations_not_counted == nil)
    }

    @Test func irqPrintsRatiosAndAllocationsAsNumbers() throws {
        let result = try Self.decode(IRQ.self, Self.irq)
        #expect(result.samples == 200)
        #expect(result.dispatches == 200)
        #expect(result.dispatch_allocations != nil && result.dispatch_allocations_total != nil)
        #expect(result.allocations_not_counted == nil)
    }

    @Test func textNamesTheAllocationCounts() throws {
        let result = try runVFIOKit(Array(Self.mmio.filter { $0 != "--json" }))
        #expect(result.status == 0, "stderr: \(result.error)")
        #expect(result.output.contains(/heap allocations: read \d+, write \d+ in the timed loops/))
    }

    /// With libc preloaded, its malloc comes before the interposer's: the bench runs itself again
    /// with the interposer preloaded first, and counts.
    @Test func countsWhenAnotherMallocIsPreloaded() throws {
        let result = try Self.decode(MMIO.self, Self.mmio, environment: ["LD_PRELOAD": "libc.so.6"])
        #expect(result.read_allocations != nil && result.write_allocations != nil)
        #expect(result.allocations_not_counted == nil)
    }

    /// With the interposer preloaded behind libc nothing can be counted, and the output says so
    /// rather than printing a count.
    @Test func saysPlainlyWhenItCannotCount() throws {
        let environment = ["LD_PRELOAD": "libc.so.6:\(try Self.interposer())"]
        let json = try Self.decode(IRQ.self, Self.irq, environment: environment)
        #expect(json.dispatch_allocations == nil && json.dispatch_allocations_total == nil)
        #expect(json.allocations_not_counted?.contains("does not see this process's allocations") == true)

        let text = try runVFIOKit(Array(Self.mmio.filter { $0 != "--json" }), environment: environment)
        #expect(text.status == 0, "stderr: \(text.error)")
        #expect(text.output.contains("heap allocations: not counted: the malloc interposer"))
        #expect(!text.output.contains("read 0, write 0"))
    }
}
