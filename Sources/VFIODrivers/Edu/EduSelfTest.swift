#if canImport(Glibc)
import Glibc
#endif
import VFIOKit

/// The edu driver's end-to-end check, step by step, as `vfiokit selftest --driver edu` prints it.
/// Each step reports whether it checked out; a failing step never stops the later ones
/// unless they depend on it, and the device is always stopped at the end.
public enum EduSelfTest {
    /// Runs every step on `device`, reporting each as it finishes.
    public static func run(on device: PCIDevice, loop: EventLoop, report: @escaping (SelfTestStep) -> Void) -> [SelfTestStep] {
        let recorder = SelfTestRecorder(report: report)
        let driver: EduDriver
        do {
            driver = try EduDriver(device: device, loop: loop)
        } catch {
            recorder.record("probe", false, "\(error)")
            return recorder.steps
        }
        recorder.record("probe", true, "\(device.address) on the \(device.backend) backend")
        let id = driver.identification
        recorder.record("identification", id == 0x0100_00ed, "0x\(String(id, radix: 16)) (edu \(id >> 24).\(id >> 16 & 0xff))")
        recorder.record("liveness", driver.isLive(), "0x12345678 reads back inverted")
        do {
            try driver.start()
        } catch {
            recorder.record("start", false, "\(error)")
            return recorder.steps
        }
        defer { driver.stop() }
        recorder.record("start", true, "\(driver.interruptKind.map(String.init(describing:)) ?? "no") interrupts, bus master on")

        recorder.check("factorial") {
            let result = try driver.factorial(10)
            return (result == 3_628_800, "10! = \(result), completion by interrupt")
        }
        recorder.check("interrupt raise/ack") {
            try driver.raiseInterrupt(0x5a00)
            let left = driver.interruptStatus
            return (left == 0, "0x5a00 delivered and acknowledged, status now 0x\(String(left, radix: 16))")
        }
        dmaRoundTrip(driver, recorder)
        return recorder.steps
    }

    private static func roundTrip(
        _ driver: EduDriver, _ recorder: SelfTestRecorder, count: Int, source: borrowing DMABuffer, target: borrowing DMABuffer
    ) {
        recorder.check("dma round trip") {
            for i in 0..<count { source.bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
            target.bytes.initializeMemory(as: UInt8.self, repeating: 0)
            try driver.dma(toRAM: false, deviceAddress: source.deviceAddress, count: count)
            try driver.dma(toRAM: true, deviceAddress: target.deviceAddress, count: count)
            let same = source.bytes.elementsEqual(target.bytes)
            return (
                same,
                "\(count) bytes RAM → device → RAM via 0x\(String(source.deviceAddress, radix: 16)) and 0x\(String(target.deviceAddress, radix: 16))"
            )
        }
    }

    private static func dmaRoundTrip(_ driver: EduDriver, _ recorder: SelfTestRecorder) {
        let dma = driver.device.dma
        let count = 1024
        do {
            // Both buffers are freed when they go out of scope.
            let source = try dma.allocate(count, below: EduRegisters.dmaLimit)
            let target = try dma.allocate(count, below: EduRegisters.dmaLimit)
            roundTrip(driver, recorder, count: count, source: source, target: target)
        } catch {
            recorder.record("dma round trip", dma.translates ? false : nil, "no DMA memory the device can reach: \(error)")
            return
        }
        guard dma.translates else {
            recorder.record("iommu fault", nil, "the \(driver.device.backend) backend has no IOMMU to catch a stray DMA")
            return
        }
        recorder.check("iommu fault") {
            let log = try driver.device.openFaultLog()
            let stray = try dma.allocate(4096, below: EduRegisters.dmaLimit)
            let unmapped = stray.deviceAddress
            try stray.free()
            try driver.dma(toRAM: true, deviceAddress: unmapped, count: 64)
            var faults: [IOMMUFault] = []
            for _ in 0..<50 where faults.isEmpty {
                faults = log.newFaults().filter { $0.address == unmapped }
                if faults.isEmpty { usleep(20_000) }
            }
            guard let fault = faults.first else {
                return (false, "DMA to unmapped IOVA 0x\(String(unmapped, radix: 16)) completed with no IOMMU fault reported")
            }
            return (true, "\(fault) caught; the device went on and completed")
        }
    }
}
