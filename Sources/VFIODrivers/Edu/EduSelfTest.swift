#if canImport(Glibc)
import Glibc
#endif
import VFIOKit

/// The edu driver's end-to-end check, step by step, as `vfiokit run --driver edu` prints it.
/// Each step reports whether it checked out; a failing step never stops the later ones
/// unless they depend on it, and the device is always stopped at the end.
public enum EduSelfTest {
    public struct Step: Sendable, CustomStringConvertible {
        public let name: String
        /// nil when the step does not apply to this backend.
        public let passed: Bool?
        public let detail: String

        public var description: String {
            "\(passed.map { $0 ? "ok  " : "FAIL" } ?? "skip") \(name): \(detail)"
        }
    }

    /// Runs every step on `device`, reporting each as it finishes.
    public static func run(on device: PCIDevice, loop: EventLoop, report: (Step) -> Void) -> [Step] {
        var steps: [Step] = []
        func record(_ name: String, _ passed: Bool?, _ detail: String) {
            let step = Step(name: name, passed: passed, detail: detail)
            steps.append(step)
            report(step)
        }
        func check(_ name: String, _ body: () throws(VFIOError) -> (Bool, String)) {
            do {
                let (ok, detail) = try body()
                record(name, ok, detail)
            } catch {
                record(name, false, error.description)
            }
        }

        let driver: EduDriver
        do {
            driver = try EduDriver(device: device, loop: loop)
        } catch {
            record("probe", false, error.description)
            return steps
        }
        record("probe", true, "\(device.address) on the \(device.backend) backend")
        let id = driver.identification
        record("identification", id == 0x0100_00ed, "0x\(String(id, radix: 16)) (edu \(id >> 24).\(id >> 16 & 0xff))")
        record("liveness", driver.isLive(), "0x12345678 reads back inverted")
        do {
            try driver.start()
        } catch {
            record("start", false, error.description)
            return steps
        }
        defer { driver.stop() }
        record("start", true, "\(driver.interruptKind.map(String.init(describing:)) ?? "no") interrupts, bus master on")

        check("factorial") { () throws(VFIOError) in
            let result = try driver.factorial(10)
            return (result == 3_628_800, "10! = \(result), completion by interrupt")
        }
        check("interrupt raise/ack") { () throws(VFIOError) in
            try driver.raiseInterrupt(0x5a00)
            let left = driver.interruptStatus
            return (left == 0, "0x5a00 delivered and acknowledged, status now 0x\(String(left, radix: 16))")
        }
        dmaRoundTrip(driver, record: record, check: check)
        return steps
    }

    private static func dmaRoundTrip(
        _ driver: EduDriver, record: (String, Bool?, String) -> Void,
        check: (String, () throws(VFIOError) -> (Bool, String)) -> Void
    ) {
        let dma = driver.device.dma
        let count = 1024
        let source: DMABuffer
        let target: DMABuffer
        do {
            source = try dma.allocate(count, below: EduRegisters.dmaLimit)
            target = try dma.allocate(count, below: EduRegisters.dmaLimit)
        } catch {
            let applies = dma.translates
            record("dma round trip", applies ? false : nil, "no DMA memory the device can reach: \(error)")
            return
        }
        defer {
            try? dma.free(source)
            try? dma.free(target)
        }
        check("dma round trip") { () throws(VFIOError) in
            for i in 0..<count { source.bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
            target.bytes.initializeMemory(as: UInt8.self, repeating: 0)
            try driver.dma(toRAM: false, deviceAddress: source.deviceAddress, count: count)
            try driver.dma(toRAM: true, deviceAddress: target.deviceAddress, count: count)
            let same = source.bytes.elementsEqual(target.bytes)
            return (same, "\(count) bytes RAM → device → RAM via 0x\(String(source.deviceAddress, radix: 16)) and 0x\(String(target.deviceAddress, radix: 16))")
        }
        guard dma.translates else {
            record("iommu fault", nil, "the \(driver.device.backend) backend has no IOMMU to catch a stray DMA")
            return
        }
        check("iommu fault") { () throws(VFIOError) in
            let log = try driver.device.openFaultLog()
            let stray = try dma.allocate(4096, below: EduRegisters.dmaLimit)
            let unmapped = stray.deviceAddress
            try dma.free(stray)
            try driver.dma(toRAM: true, deviceAddress: unmapped, count: 64)
            var faults: [IOMMUFault] = []
            for _ in 0..<50 where faults.isEmpty {
                faults = log.newFaults().filter { $0.address == unmapped }
                if faults.isEmpty { usleep(20_000) }
            }
            guard let fault = faults.first else { return (false, "DMA to unmapped IOVA 0x\(String(unmapped, radix: 16)) completed with no IOMMU fault reported") }
            return (true, "\(fault) caught; the device went on and completed")
        }
    }
}
