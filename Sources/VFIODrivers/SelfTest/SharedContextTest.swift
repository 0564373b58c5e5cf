import VFIOKit

/// Devices in one IOMMU context, end to end, as `vfiokit context` prints it: every device opens
/// into the context, and with two edu devices one's DMA writes a buffer that the other's reads.
public enum SharedContextTest {
    /// Runs the steps on `devices`, all open in `context`, reporting each as it finishes.
    public static func run(
        _ devices: [PCIDevice], in context: IOMMUContext, loop: EventLoop, report: @escaping (SelfTestStep) -> Void
    ) -> [SelfTestStep] {
        let recorder = SelfTestRecorder(report: report)
        let shared = devices.allSatisfy { $0.context === context }
        recorder.record(
            "one context", shared && !devices.isEmpty,
            "\(devices.map { "\($0.address)" }.joined(separator: ", ")) in one \(context.mode?.name ?? "-") context")
        let edus = devices.filter { (try? EduDriver.supports($0)) == true }
        guard edus.count >= 2 else {
            recorder.record("shared buffer", nil, "needs two edu devices, found \(edus.count)")
            return recorder.steps
        }
        recorder.check("shared buffer") {
            let writer = try EduDriver(device: edus[0], loop: loop)
            let reader = try EduDriver(device: edus[1], loop: loop)
            try writer.start()
            defer { writer.stop() }
            try reader.start()
            defer { reader.stop() }
            return try passThrough(writer, reader, context.dma)
        }
        return recorder.steps
    }

    /// The writer copies a pattern into a shared buffer by DMA; the reader copies that buffer
    /// out by DMA, so the result matches only if both devices reached the same mapping.
    private static func passThrough(_ writer: EduDriver, _ reader: EduDriver, _ dma: DMASpace) throws -> (Bool, String) {
        let count = 512
        let source = try dma.allocate(count, below: EduRegisters.dmaLimit)
        let shared = try dma.allocate(count, below: EduRegisters.dmaLimit)
        let result = try dma.allocate(count, below: EduRegisters.dmaLimit)
        for i in 0..<count { source.bytes[i] = UInt8(truncatingIfNeeded: i &* 13 &+ 5) }
        try writer.dma(toRAM: false, deviceAddress: source.deviceAddress, count: count)
        try writer.dma(toRAM: true, deviceAddress: shared.deviceAddress, count: count)
        try reader.dma(toRAM: false, deviceAddress: shared.deviceAddress, count: count)
        try reader.dma(toRAM: true, deviceAddress: result.deviceAddress, count: count)
        let same = source.bytes.prefix(count).elementsEqual(result.bytes.prefix(count))
        return (
            same,
            "\(writer.device.address) wrote 0x\(String(shared.deviceAddress, radix: 16)) by DMA; \(reader.device.address) read it back by DMA"
        )
    }
}
