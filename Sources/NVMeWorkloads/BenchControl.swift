import CLIOutput
import Foundation
import Synchronization

/// The run's clock and counters: stops the workload after `seconds` and, on long runs, prints
/// IOPS to standard error once a second meanwhile.
public final class BenchControl: Sendable {
    public let progress = Atomic<Int>(0)
    public let stop = Atomic<Bool>(false)
    public let errors = Atomic<Int>(0)
    /// The monotonic clock's own share of a timed interval, measured before the run.
    public let clockNanoseconds = clockCost()
    private let seconds: Double
    private let quiet: Bool
    private let ended = DispatchSemaphore(value: 0)

    public init(seconds: Double, quiet: Bool) {
        self.seconds = seconds
        self.quiet = quiet
    }

    /// Starts the clock on its own thread.
    public func start() {
        Thread { [self] in
            let start = monotonicNow()
            var last = 0
            var tick = 1.0
            while true {
                let elapsed = Double(monotonicNow() - start) / 1e9
                if elapsed >= seconds { break }
                usleep(UInt32(min(tick - elapsed, seconds - elapsed) * 1e6) + 1000)
                guard Double(monotonicNow() - start) / 1e9 >= tick else { continue }
                let done = progress.load(ordering: .relaxed)
                if !quiet { printError("  \(Int(tick))/\(Int(seconds.rounded(.up))) s: \(done - last) IOPS") }
                last = done
                tick += 1
            }
            stop.store(true, ordering: .relaxed)
            ended.signal()
        }.start()
    }

    /// Waits for the clock to run out.
    public func waitForEnd() { ended.wait() }
}
