#if canImport(Glibc)
import Glibc
#endif
import VFIOKit

/// The IMS queue driver's end-to-end check (`vfiokit selftest --driver ims-queue`): with each store
/// kind, queues get work and every completion is counted on its own queue.
public enum IMSQueueSelfTest {
    public static let queues = 64

    public static func run(on device: PCIDevice, loop: EventLoop, report: @escaping (SelfTestStep) -> Void) -> [SelfTestStep] {
        let recorder = SelfTestRecorder(report: report)
        for store in IMSQueueDriver.StoreKind.allCases {
            recorder.check("\(store.rawValue) store") {
                let driver = try IMSQueueDriver(device: device, loop: loop)
                driver.configuration.queues = queues
                driver.configuration.store = store
                try driver.start()
                defer { driver.stop() }
                for q in 0..<queues {
                    try driver.submit(queue: q, count: q % 4 + 1)
                }
                let expected = (0..<queues).map { UInt64($0 % 4 + 1) }
                let deadline = ContinuousClock.now + .seconds(10)
                while driver.completionCounts() != expected, ContinuousClock.now < deadline { usleep(1000) }
                let counts = driver.completionCounts()
                return (
                    counts == expected,
                    "\(queues) queues, \(counts.reduce(0, +)) of \(expected.reduce(0, +)) completions counted on their own queues"
                )
            }
        }
        return recorder.steps
    }
}
