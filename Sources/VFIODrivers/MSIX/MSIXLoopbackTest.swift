import Dispatch
import Synchronization
import VFIOKit

/// Arms every MSI-X vector of a device, growing the set where the kernel allows it, fires
/// each vector with VFIO's own trigger (ACTION_TRIGGER with DATA_NONE) and receives it on its
/// eventfd through the event loop.
///
/// It never touches the device's registers, so it is safe on any function bound to vfio-pci
/// (an e1000e or NVMe): only the kernel's interrupt plumbing and VFIOKit's are exercised.
public enum MSIXLoopbackTest {
    public static let name = "msix-loopback"

    /// Runs the check on `device`, reporting each step as it finishes. MSI-X is disabled
    /// again and every handler unregistered before it returns.
    public static func run(on device: PCIDevice, loop: EventLoop, report: @escaping (SelfTestStep) -> Void) -> [SelfTestStep] {
        let recorder = SelfTestRecorder(report: report)
        let info: IRQInfo
        do { info = try device.interrupts.info(.msix) } catch {
            recorder.record("msix info", false, error.description)
            return recorder.steps
        }
        guard info.count > 0 else {
            recorder.record(
                "msix info", false, "\(device.address) has no MSI-X vectors on the \(device.backend) backend (UIO delivers INTx only)")
            return recorder.steps
        }
        let dynamic = !info.flags.contains(.noResize)
        recorder.record("msix info", true, "\(info.count) vectors, \(dynamic ? "dynamic (no NORESIZE)" : "NORESIZE: fixed at enable")")
        defer { try? device.interrupts.disable(.msix) }

        var sources: [InterruptSource] = []
        recorder.check("arm") {
            if dynamic && info.count > 1 {
                let first = info.count / 2
                sources = try device.interrupts.enable(.msix, vectors: first)
                sources += try device.interrupts.grow(.msix, to: info.count)
                return (sources.count == info.count, "armed \(first), then grew to \(sources.count) while enabled")
            }
            sources = try device.interrupts.enable(.msix, vectors: info.count)
            return (sources.count == info.count, "armed all \(sources.count) at once")
        }
        guard sources.count == info.count else { return recorder.steps }

        let received = Mutex<[UInt64]>(Array(repeating: 0, count: sources.count))
        let arrivals = DispatchSemaphore(value: 0)
        var registrations = EventLoop.Registrations()  // ended when the function returns
        recorder.check("fire and receive") {
            for source in sources {
                let vector = source.vector
                registrations.append(
                    try loop.register(source) { count in
                        received.withLock { $0[vector] += count }
                        arrivals.signal()
                    })
            }
            for source in sources { try device.interrupts.trigger(.msix, vector: source.vector) }
            let deadline = DispatchTime.now() + .seconds(10)
            while received.withLock({ $0.contains(0) }) {
                guard arrivals.wait(timeout: deadline) == .success else { break }
            }
            let counts = received.withLock { $0 }
            let missing = counts.indices.filter { counts[$0] == 0 }
            let extra = counts.indices.filter { counts[$0] > 1 }
            let detail =
                missing.isEmpty && extra.isEmpty
                ? "each of \(counts.count) vectors fired once and arrived once on its own eventfd"
                : "missing vectors \(missing), repeated vectors \(extra)"
            return (missing.isEmpty && extra.isEmpty, detail)
        }
        return recorder.steps
    }
}
