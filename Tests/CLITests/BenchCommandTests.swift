import Foundation
import Testing
@testable import vfiokit_bench

/// `vfiokit-bench`: the shape of its JSON and the allocation figures. Timings are never
/// asserted: they belong to the benchmark's own output. The bench is built with the same
/// sanitizer as this process, so ``AllocationCounter/sanitizer`` says whether it can count.
@Suite struct BenchCommandTests {
    struct MMIO: Decodable {
        let iterations: Int
        let read_ns, write_ns, c_read_ns, c_write_ns, read_ratio, write_ratio: Double
        let scattered_read_ns, scattered_write_ns, c_scattered_read_ns, c_scattered_write_ns: Double
        let scattered_read_ratio, scattered_write_ratio: Double
        let read_allocations, write_allocations, scattered_read_allocations, scattered_write_allocations: Int?
        let allocations_not_counted: String?

        var allocations: [Int?] { [read_allocations, write_allocations, scattered_read_allocations, scattered_write_allocations] }
    }

    struct IRQ: Decodable {
        let samples: Int
        let p50_ns, p99_ns, c_p50_ns, c_p99_ns: UInt64
        let p50_ratio, p99_ratio: Double
        let dispatches: Int
        let dispatch_allocations, dispatch_allocations_total: Int?
        let allocations_not_counted: String?
    }

    struct NVMe: Decodable {
        let ios, errors: Int
        struct Figures: Decodable { let cpu_ns_per_io, completion_to_doorbell_ns_per_io, sq_doorbell_ns_per_write: Double }
        let polled_figures: Figures
        let allocations_per_io: Double?
        let allocations_in_loop, allocations_on_thread, allocations_total: Int?
        let allocations_not_counted: String?
    }

    struct IMS: Decodable {
        let slots, dispatch_small_slots, dispatches, latency_domain_slots: Int
        let program_seconds, dsa_table_program_seconds, bytes_per_slot, bytes_per_slot_shared_handler: Double
        let dispatch_hot_ratio, dispatch_cold_ratio, latency_p50_ratio, latency_p99_ratio: Double
        let dsa_table_slots, dispatch_cold_samples, eviction_bytes: Int
        let dispatch_hot_small_ns, dispatch_hot_large_ns, dispatch_cold_small_ns, dispatch_cold_large_ns, ims_p50_ns, ims_p99_ns, msix_p50_ns, msix_p99_ns: UInt64
        let dispatch_allocations, dispatch_allocations_total: Int?
        let allocations_not_counted: String?
        let cpu: String
    }

    static let mmio = ["mmio", "--json", "--iterations", "100000", "--rounds", "1"]
    static let irq = ["irq", "--json", "--samples", "200", "--rounds", "2"]
    static let noSanitizer = AllocationCounter.sanitizer == nil

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
        try runVFIOKit(arguments, environment: environment, executable: "vfiokit-bench")
    }

    static func decode<T: Decodable>(_ type: T.Type, _ arguments: [String], environment: [String: String] = [:]) throws -> T {
        let result = try run(arguments, environment: environment)
        #expect(result.status == 0, "stderr: \(result.error)")
        return try JSONDecoder().decode(type, from: Data(result.output.utf8))
    }

    /// The interposer `vfiokit-bench` links, by its real path (as the process maps it).
    static func interposer() throws -> String {
        try builtExecutable("vfiokit-bench").deletingLastPathComponent()
            .appendingPathComponent("libMallocInterposerSwift.so").resolvingSymlinksInPath().path
    }

    @Test func mmioPrintsEveryPatternAndItsAllocations() throws {
        let result = try Self.decode(MMIO.self, Self.mmio)
        #expect(result.iterations == 100_000)
        #expect([result.read_ratio, result.write_ratio, result.scattered_read_ratio, result.scattered_write_ratio].allSatisfy { $0 > 0 })
        Self.expectCounted(result.allocations, notCounted: result.allocations_not_counted)
    }

    @Test func irqPrintsRatiosAndAllocations() throws {
        let result = try Self.decode(IRQ.self, Self.irq)
        #expect(result.samples == 200)
        #expect(result.dispatches == 200)
        #expect(result.p50_ratio > 0 && result.p99_ratio > 0)
        Self.expectCounted([result.dispatch_allocations, result.dispatch_allocations_total], notCounted: result.allocations_not_counted)
    }

    @Test func imsPrintsTheIssuesFiguresAndNoAllocationPerDispatch() throws {
        let result = try Self.decode(IMS.self, ["ims", "--json", "--slots", "2000", "--samples", "100"])
        #expect(result.slots == 2000 && result.latency_domain_slots == 2000 && result.dispatch_small_slots == 1000)
        #expect(result.dispatches == 100)
        #expect(result.program_seconds > 0 && result.dsa_table_program_seconds > 0 && result.dsa_table_slots == 2000)
        // A handler per slot costs memory a shared one does not.
        #expect(result.bytes_per_slot > result.bytes_per_slot_shared_handler)
        #expect(result.dispatch_hot_ratio == Double(result.dispatch_hot_large_ns) / Double(result.dispatch_hot_small_ns))
        #expect(result.dispatch_cold_ratio == Double(result.dispatch_cold_large_ns) / Double(result.dispatch_cold_small_ns))
        #expect(result.dispatch_cold_samples == 100 && result.eviction_bytes >= 64 << 10)
        #expect(result.latency_p50_ratio == Double(result.ims_p50_ns) / Double(result.msix_p50_ns))
        #expect(result.ims_p99_ns >= result.ims_p50_ns && result.msix_p99_ns >= result.msix_p50_ns)
        Self.expectCounted([result.dispatch_allocations, result.dispatch_allocations_total], notCounted: result.allocations_not_counted)
        if let onThread = result.dispatch_allocations { #expect(onThread == 0, "an IMS dispatch allocated") }
        #expect(!result.cpu.isEmpty)
    }

    @Test func nvmePrintsCPUPerIOAndNoAllocationOnThePollingPath() throws {
        let result = try Self.decode(NVMe.self, ["nvme", "--json", "--seconds", "0.5", "--queue-depth", "8"])
        #expect(result.ios > 0 && result.errors == 0)
        // The split is wall-clock time (a preempted thread shows more than its CPU): only its presence is checked.
        #expect(result.polled_figures.cpu_ns_per_io > 0)
        #expect(result.polled_figures.completion_to_doorbell_ns_per_io > 0 && result.polled_figures.sq_doorbell_ns_per_write > 0)
        Self.expectCounted([result.allocations_in_loop, result.allocations_on_thread, result.allocations_total], notCounted: result.allocations_not_counted)
        #expect((result.allocations_per_io != nil) == (result.allocations_on_thread != nil))
        // Set-up may allocate; the polling loop, submission to completion, may not.
        if let inLoop = result.allocations_in_loop { #expect(inLoop == 0, "the polled NVMe loop allocated \(inLoop) times over \(result.ios) I/Os") }
    }

    /// Counts are numbers, except in a sanitizer build, where the output names the sanitizer instead.
    static func expectCounted(_ counts: [Int?], notCounted: String?, sourceLocation: SourceLocation = #_sourceLocation) {
        if let sanitizer = AllocationCounter.sanitizer {
            #expect(counts.allSatisfy { $0 == nil }, sourceLocation: sourceLocation)
            #expect(notCounted?.contains(sanitizer) == true, sourceLocation: sourceLocation)
        } else {
            #expect(counts.allSatisfy { $0 != nil }, sourceLocation: sourceLocation)
            #expect(notCounted == nil, sourceLocation: sourceLocation)
        }
    }

    @Test(.enabled(if: noSanitizer, "a sanitizer's malloc comes before the interposer, so nothing is counted"))
    func textNamesTheAllocationCounts() throws {
        let result = try Self.run(Array(Self.mmio.filter { $0 != "--json" }))
        #expect(result.status == 0, "stderr: \(result.error)")
        #expect(result.output.contains(/heap allocations: read \d+, write \d+, scattered read \d+, scattered write \d+ in the timed loops/))
    }

    /// With libc preloaded, its malloc comes before the interposer's: the bench runs itself again
    /// with the interposer preloaded first, and counts. (A sanitizer's runtime refuses to run
    /// behind a preloaded library.)
    @Test(.enabled(if: noSanitizer, "a sanitizer's runtime must come before any preloaded library"))
    func countsWhenAnotherMallocIsPreloaded() throws {
        let result = try Self.decode(MMIO.self, Self.mmio, environment: ["LD_PRELOAD": "libc.so.6"])
        #expect(result.allocations.allSatisfy { $0 != nil })
        #expect(result.allocations_not_counted == nil)
    }

    /// With the interposer preloaded behind libc nothing can be counted, and the output says so
    /// rather than printing a count.
    @Test(.enabled(if: noSanitizer, "a sanitizer's runtime must come before any preloaded library"))
    func saysPlainlyWhenItCannotCount() throws {
        let environment = ["LD_PRELOAD": "libc.so.6:\(try Self.interposer())"]
        let json = try Self.decode(IRQ.self, Self.irq, environment: environment)
        #expect(json.dispatch_allocations == nil && json.dispatch_allocations_total == nil)
        #expect(json.allocations_not_counted?.contains("does not see this process's allocations") == true)

        let text = try Self.run(Array(Self.mmio.filter { $0 != "--json" }), environment: environment)
        #expect(text.status == 0, "stderr: \(text.error)")
        #expect(text.output.contains("heap allocations: not counted: the malloc interposer"))
        #expect(!text.output.contains("read 0, write 0"))
    }

    /// The binary users run carries no benchmark machinery: no interposer among its libraries,
    /// no C reference loops, no `bench` command.
    @Test func vfiokitLinksNoBenchmarkMachinery() throws {
        let binary = try Data(contentsOf: try builtExecutable("vfiokit"))
        #expect(binary.range(of: Data("libMallocInterposerSwift".utf8)) == nil)
        #expect(binary.range(of: Data("cbench_read32_loop".utf8)) == nil)
        let bench = try Data(contentsOf: try builtExecutable("vfiokit-bench"))
        #expect(bench.range(of: Data("libMallocInterposerSwift".utf8)) != nil)
        #expect(bench.range(of: Data("cbench_read32_loop".utf8)) != nil)
        let result = try runVFIOKit(["bench", "mmio"])
        #expect(result.status != 0)
        #expect(result.error.contains("bench"))
    }
}
