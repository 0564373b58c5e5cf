import ArgumentParser
import Foundation

/// `vfiokit bench mmio|irq [--json]`: the framework's hot paths against plain C in one run.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure MMIO access and interrupt dispatch against a C reference in the same run.",
        subcommands: [MMIOBenchCommand.self, IRQBenchCommand.self, IMSBenchCommand.self])
}

/// Prints a result as sorted-key JSON or as aligned text lines.
func printResult<T: Encodable>(_ result: T, json: Bool, lines: [String]) throws {
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
    } else {
        lines.forEach { print($0) }
    }
}

/// The median and the 99th percentile of `values`.
func percentiles(_ values: [UInt64]) -> (p50: UInt64, p99: UInt64) {
    let sorted = values.sorted()
    return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
}

/// A figure with two decimals, for the text output.
func fixed(_ value: Double) -> String { String(format: "%.2f", value) }

/// The text line for allocation counts, or for why they were not counted (`counted` is nil).
func allocationLine(_ counted: String?) -> String {
    "  heap allocations: " + (counted ?? "not counted: \(AllocationCounter.unavailableReason ?? "unknown")")
}
