#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import VFIOKit

/// A verify workload on the NVMe driver, for a host's work loop (`vfiokit run --driver
/// nvme-verify`, and the soak): each unit writes a fresh pattern to a 4 KiB range of its own on
/// every queue, reads it back and compares. Queues are polled through
/// ``NVMeDriver/withQueuePair(_:_:)``; submissions, completions and timeouts are counted per
/// queue where they happen. Never matched by IDs: a host names it. Writes overwrite the first
/// `queues` × 4 KiB of namespace 1.
public final class NVMeVerifyDriver: ExercisableDriver, @unchecked Sendable {
    public static let name = "nvme-verify"
    public static let matches: [PCIMatch] = []
    /// I/O queue pairs the workload uses, and how long it waits for one command.
    public static let queues = 2
    public static let timeout = Duration.seconds(5)
    static let bytes = 4096

    public let device: PCIDevice
    private let nvme: NVMeDriver
    private struct Counts {
        var submitted = [UInt64](repeating: 0, count: NVMeVerifyDriver.queues)
        var completed = [UInt64](repeating: 0, count: NVMeVerifyDriver.queues)
        var timeouts = [UInt64](repeating: 0, count: NVMeVerifyDriver.queues)
        var errors: UInt64 = 0
        var units: UInt64 = 0
    }
    private let counts = Mutex(Counts())
    /// Written (first half) and read back (second half), `bytes` per queue each.
    private final class Buffers: @unchecked Sendable {
        let memory: DMABuffer
        init(_ memory: consuming DMABuffer) { self.memory = memory }
    }
    private let buffers = Mutex<Buffers?>(nil)

    public init(device: PCIDevice, loop: EventLoop) throws {
        self.device = device
        var configuration = NVMeDriver.Configuration()
        configuration.queues = Self.queues
        configuration.polled = true
        configuration.queueDepth = 4
        configuration.commandTimeout = Self.timeout
        nvme = try NVMeDriver(device: device, loop: loop, configuration: configuration)
    }

    public func start() throws {
        try nvme.bringUp()
        guard nvme.queueCount == Self.queues else {
            throw NVMeError.invalidArgument(
                "the controller granted \(nvme.queueCount) I/O queue pairs; the verify workload needs \(Self.queues)")
        }
        guard let namespace = nvme.namespaces.first, Self.bytes % namespace.blockSize == 0,
            namespace.size * UInt64(namespace.blockSize) >= UInt64(Self.queues * Self.bytes)
        else {
            throw NVMeError.invalidArgument(
                "the verify workload needs a namespace of at least \(Self.queues * Self.bytes) bytes in blocks dividing 4096")
        }
        let allocated = Buffers(try device.dma.allocate(2 * Self.queues * Self.bytes))
        buffers.withLock { $0 = allocated }
    }

    public func stop() {
        _ = nvme.shutDown()
        buffers.withLock { $0 = nil }
    }

    public var activity: DriverActivity {
        let c = counts.withLock { $0 }
        let queues = (0..<Self.queues).map {
            DriverActivity.Queue(name: "queue \($0)", submitted: c.submitted[$0], completed: c.completed[$0], timeouts: c.timeouts[$0])
        }
        return DriverActivity(operations: c.completed.reduce(0, +), errors: c.errors, queues: queues)
    }

    /// Writes a fresh pattern on every queue, reads it back and compares; throws on a failed
    /// command, a mismatch, or a command not completed within ``timeout``.
    public func exercise() throws {
        guard let b = buffers.withLock({ $0 }), let namespace = nvme.namespaces.first else {
            throw NVMeError.invalidArgument("the verify driver is not started")
        }
        let unit = counts.withLock { c in
            defer { c.units += 1 }; return c.units
        }
        let base = b.memory.bytes.baseAddress!
        let blocks = Self.bytes / namespace.blockSize
        for q in 0..<Self.queues {
            let written = base + q * Self.bytes, back = base + (Self.queues + q) * Self.bytes
            for i in 0..<Self.bytes / 8 {
                written.storeBytes(of: unit &* 0x9e37_79b9_7f4a_7c15 ^ UInt64(q << 32 | i), toByteOffset: i * 8, as: UInt64.self)
            }
            memset(back, 0, Self.bytes)
            let lba = UInt64(q * blocks)
            try command(
                queue: q, write: true, lba: lba, blocks: blocks, at: b.memory.deviceAddress + UInt64(q * Self.bytes),
                namespace: namespace.id)
            try command(
                queue: q, write: false, lba: lba, blocks: blocks, at: b.memory.deviceAddress + UInt64((Self.queues + q) * Self.bytes),
                namespace: namespace.id)
            guard memcmp(written, back, Self.bytes) == 0 else {
                counts.withLock { $0.errors += 1 }
                throw NVMeError.invalidArgument("queue \(q): LBA \(lba) read back differs from what unit \(unit) wrote")
            }
        }
    }

    /// One command on queue `q`, polled to its completion within ``timeout``.
    private func command(queue q: Int, write: Bool, lba: UInt64, blocks: Int, at address: UInt64, namespace: UInt32) throws {
        try nvme.withQueuePair(q) { (pair) throws(NVMeError) in
            try pair.submit(
                .readWrite(write: write, namespaceID: namespace, lba: lba, blocks: blocks),
                data: NVMeDataRange(deviceAddress: address, count: Self.bytes))
            counts.withLock { $0.submitted[q] += 1 }
            pair.ring()
            let deadline = DispatchTime.now() + .nanoseconds(Int(Self.timeout / .nanoseconds(1)))
            var failure: NVMeCompletion?
            while pair.poll({ c in if !c.succeeded { failure = c } }) == 0 {
                guard DispatchTime.now() < deadline else {
                    counts.withLock { $0.timeouts[q] += 1 }
                    throw .timeout(
                        command: "verify \(write ? "write" : "read") on queue \(q + 1)", milliseconds: Int(Self.timeout / .milliseconds(1)),
                        recovery: "the controller may be hung; reset it")
                }
                usleep(10)
            }
            counts.withLock { $0.completed[q] += 1 }
            if let failure {
                counts.withLock { $0.errors += 1 }
                throw .invalidArgument("verify \(write ? "write" : "read") on queue \(q + 1) failed: \(failure.status)")
            }
        }
    }
}
