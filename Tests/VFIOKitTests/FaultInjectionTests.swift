import PCI
import Synchronization
import SystemPackage
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Faults injected at the system-call seam, in the manner of swift-system's ForceErrno: each
/// multi-call operation runs once to count the calls it makes, then once per call with that
/// call failing. After every run: the error (if the operation reports one) carries the
/// kernel's reason, no descriptor is left open, no mapping is left in the IOMMU, no interrupt
/// is left enabled, and the device opens again as the kernel model has it. An IMS commit must
/// fail (its calls are trapped register accesses, which cannot throw themselves) with
/// ``IMSError/commitFailed(store:cause:)`` and leave its slot masked in the device.
@Suite(.serialized) struct FaultInjectionTests {
    /// The errnos injected, in turn: pread and pwrite fail with EIO (or an operation's own list).
    static let errnos: [Errno] = [
        .interrupted, .noMemory, .resourceBusy, .badAddress, .noSuchAddressOrDevice, .operationNotSupportedByDevice,
    ]
    /// What vfio-pci's BAR read and write return: EIO (memory decoding off), EFAULT (the copy to
    /// or from the caller), ENOMEM and EBUSY (mapping the BAR on its first access).
    static let regionAccessErrnos: [Errno] = [.ioError, .badAddress, .noMemory, .resourceBusy]

    /// Counts the calls it sees while armed and fails the `failAt`-th.
    final class Plan: Sendable {
        private struct State {
            var armed = false
            var calls = 0
            var failAt: Int?
            var injected: Errno?
            var failedCall = ""
            var accessErrno = Errno.ioError
        }
        private let state = Mutex(State())
        /// Fails call `failAt` (none when nil); a failed pread or pwrite fails with `accessErrno`.
        init(failAt: Int?, accessErrno: Errno = .ioError) {
            state.withLock { s in
                s.failAt = failAt
                s.accessErrno = accessErrno
            }
        }
        func arm() { state.withLock { $0.armed = true } }
        func disarm() { state.withLock { $0.armed = false } }
        var calls: Int { state.withLock { $0.calls } }
        var injected: Errno? { state.withLock { $0.injected } }
        /// The call that was failed, as `ioctl(request)`, `open(path)` or the call's name.
        var failedCall: String { state.withLock { $0.failedCall } }

        func see(_ call: InterposedKernel.Call) throws(Errno) {
            let errno: Errno? = state.withLock { s in
                guard s.armed else { return nil }
                defer { s.calls += 1 }
                guard s.calls == s.failAt else { return nil }
                let e: Errno
                switch call {
                case .pread, .pwrite: e = s.accessErrno
                default: e = FaultInjectionTests.errnos[s.calls % FaultInjectionTests.errnos.count]
                }
                s.injected = e
                s.failedCall = "\(call)"
                return e
            }
            if let errno { throw errno }
        }
    }

    /// One operation under test: `body` gets the seam, the plan and the simulated device, arms
    /// the plan around the calls under test, and leaves the device closed however it ends.
    struct Operation: CustomTestStringConvertible, Sendable {
        let name: String
        let backend: Backend
        let device: @Sendable () -> SimulatedDevice
        /// Each call point is failed once with each of these when it is a pread or pwrite.
        var accessErrnos: [Errno] = [.ioError]
        let body: @Sendable (PCIAddress, InterposedKernel, Plan, SimulatedDevice) throws -> Void
        var testDescription: String { name }
    }

    static let address = MockMachine.primary

    static func opening(_ backend: Backend) -> Operation {
        Operation(name: "open (\(backend))", backend: backend, device: { Devices.edu() }) { address, system, plan, _ in
            plan.arm()
            let device = try PCIDevice.open(address, backend: backend, system: system)
            plan.disarm()
            device.close()
        }
    }

    /// Opens on the seam with the plan disarmed, arms it for `step`, and closes.
    static func onOpenDevice(
        _ name: String, _ device: @escaping @Sendable () -> SimulatedDevice,
        _ step: @escaping @Sendable (PCIDevice) throws -> Void
    ) -> Operation {
        Operation(name: name, backend: .legacy, device: device) { address, system, plan, _ in
            let device = try PCIDevice.open(address, backend: .legacy, system: system)
            defer {
                plan.disarm()
                device.close()
            }
            plan.arm()
            try step(device)
        }
    }

    /// An IMS commit on the simulated IMS queue device under the sample driver (4 queues, each
    /// slot unmasked): `prepare` runs on slot 1 unarmed, then `step` armed. A failed commit
    /// must throw an error naming the commit, leave slot 1 masked in the device, and leave the
    /// domain holding `allocated` slots after a failure. The device's BARs are not mappable, so
    /// the commit's register accesses are the pread and pwrite calls the plan fails.
    static func imsCommit(
        _ store: IMSQueueDriver.StoreKind, _ name: String, allocatedAfterFailure allocated: Int = 4,
        prepare: @escaping @Sendable (IMSDomain, IMSSlot) throws -> Void = { _, _ in },
        _ step: @escaping @Sendable (IMSDomain, IMSSlot) throws -> Void
    ) -> Operation {
        Operation(
            name: "IMS commit, \(store) store: \(name)", backend: .legacy, device: { Devices.imsQueue(trapped: true) },
            accessErrnos: regionAccessErrnos
        ) { address, system, plan, simulated in
            let simulated = try #require(simulated as? IMSQueueDevice)
            let device = try PCIDevice.open(address, backend: .legacy, system: system)
            // The loop waits on the kernel directly, so its epoll_wait calls are not counted.
            let loop = try EventLoop(system: system.kernel)
            try loop.start()
            let driver = try IMSQueueDriver(device: device, loop: loop)
            defer {
                plan.disarm()
                driver.stop()
                loop.stop()
                device.close()
            }
            driver.configuration.queues = 4
            driver.configuration.store = store
            try driver.start()
            let domain = try #require(driver.domain)
            let slot = driver.slots[1]
            try prepare(domain, slot)
            plan.arm()
            do { try step(domain, slot) } catch {
                plan.disarm()
                let what = "\(name) on the \(store) store, \(plan.failedCall) failing"
                guard case IMSError.commitFailed = error else {
                    Issue.record("\(what): \(error), not commitFailed")
                    throw error
                }
                #expect("\(error)".contains("committing the") && "\(error)".contains("left masked"), "\(what): \(error)")
                #expect(simulated.isMasked(slot: slot.index), "\(what): slot \(slot.index) left unmasked in the device")
                #expect(domain.allocatedCount == allocated, "\(what): \(domain.allocatedCount) slots allocated")
                throw error
            }
            plan.disarm()
            if plan.injected != nil { Issue.record("IMS commit, \(store) store: \(name) succeeded with \(plan.failedCall) failing") }
        }
    }

    /// The IMS commits of each store kind.
    static let imsCommits: [Operation] = IMSQueueDriver.StoreKind.allCases.flatMap { store in
        [
            imsCommit(store, "unmask", prepare: { domain, slot in try domain.mask(slot) }) { domain, slot in try domain.unmask(slot) },
            imsCommit(store, "mask") { domain, slot in try domain.mask(slot) },
            imsCommit(store, "allocate", allocatedAfterFailure: 3, prepare: { domain, slot in try domain.free(slot) }) { domain, _ in
                _ = try domain.allocate { _ in }
            },
            imsCommit(store, "batch allocate and unmask", allocatedAfterFailure: 3, prepare: { domain, slot in try domain.free(slot) }) {
                domain, _ in
                try domain.batch { (b) throws(IMSError) in try b.unmask(try b.allocate(handler: IMSHandler { _ in })) }
            },
            imsCommit(store, "free") { domain, slot in try domain.free(slot) },
        ]
    }

    static let operations: [Operation] =
        [
            opening(.legacy), opening(.iommufd), opening(.uio), opening(.noIOMMU),
            onOpenDevice("region mapping", { Devices.memory() }) { device in _ = try device.bar(0) },
            onOpenDevice("interrupt enable (MSI-X)", { Devices.memory(msix: 8) }) { device in
                _ = try device.interrupts.enable(.msix, vectors: 2)
            },
            onOpenDevice("interrupt enable (MSI)", { Devices.edu() }) { device in _ = try device.interrupts.enable(.msi) },
            Operation(name: "interrupt grow (MSI-X)", backend: .legacy, device: { Devices.memory(msix: 8) }) { address, system, plan, _ in
                let device = try PCIDevice.open(address, backend: .legacy, system: system)
                defer {
                    plan.disarm()
                    device.close()
                }
                _ = try device.interrupts.enable(.msix, vectors: 1)
                plan.arm()
                _ = try device.interrupts.grow(.msix, to: 4)
            },
            onOpenDevice("DMA allocate and map", { Devices.edu() }) { device in
                let buffer = try device.dma.allocate(8192)
                try buffer.free()
            },
            Operation(name: "device close", backend: .legacy, device: { Devices.memory(msix: 8) }) { address, system, plan, _ in
                let device = try PCIDevice.open(address, backend: .legacy, system: system)
                _ = try device.interrupts.enable(.msix, vectors: 2)
                _ = try device.bar(0)
                let buffer = try device.dma.allocate(4096)
                plan.arm()
                device.close()
                plan.disarm()
                _ = consume buffer
            },
        ] + imsCommits

    /// A fresh mock holding the operation's device, bound as its backend needs.
    static func machine(for operation: Operation) throws -> (MockMachine, SimulatedDevice) {
        let machine = MockMachine(for: operation.backend)
        let device = operation.device()
        try machine.kernel.plug(device, at: address, driver: operation.backend == .uio ? .uioPCIGeneric : .vfioPCI)
        return (machine, device)
    }

    /// Runs `operation` with call `failAt` failing (none when nil), a pread or pwrite with
    /// `accessErrno`; returns the plan and the error.
    static func run(_ operation: Operation, failAt: Int?, accessErrno: Errno = .ioError) throws -> (Plan, Error?, MockKernel) {
        let (machine, device) = try machine(for: operation)
        let plan = Plan(failAt: failAt, accessErrno: accessErrno)
        let seam = InterposedKernel(machine.kernel) { (call) throws(Errno) in try plan.see(call) }
        do {
            try operation.body(address, seam, plan, device)
            return (plan, nil, machine.kernel)
        } catch {
            return (plan, error, machine.kernel)
        }
    }

    @Test(arguments: operations)
    func everyCallFailingLeavesNothingBehind(_ operation: Operation) throws {
        let (counting, error, _) = try Self.run(operation, failAt: nil)
        #expect(error == nil, "\(operation.name) fails without an injected fault: \(String(describing: error))")
        let points = counting.calls
        #expect(points > 0)
        for i in 0..<points {
            for accessErrno in operation.accessErrnos {
                // Another errno changes nothing for a call other than pread or pwrite.
                guard try failing(operation, at: i, accessErrno: accessErrno) else { break }
            }
        }
        let errnos = operation.accessErrnos.map { "\($0.rawValue)" }.joined(separator: ", ")
        print("fault injection: \(operation.name): \(points) call points, each failed in turn (a pread or pwrite with errno \(errnos))")
    }

    /// Runs `operation` with call `i` failing (with `accessErrno` if it is a pread or pwrite)
    /// and checks what it leaves behind; returns whether the failed call was a pread or pwrite.
    func failing(_ operation: Operation, at i: Int, accessErrno: Errno) throws -> Bool {
        let (plan, error, kernel) = try Self.run(operation, failAt: i, accessErrno: accessErrno)
        let injected = try #require(plan.injected)
        let what = "\(operation.name), call \(i) (\(plan.failedCall)) failing with \(injected)"
        if let error {
            // The kernel's reason reaches the caller.
            #expect("\(error)".contains(injected.description), "\(what): \(error)")
        }
        #expect(kernel.openFileCount == 0, "\(what): \(kernel.openFileCount) descriptors left open")
        #expect(kernel.dmaMappings(of: Self.address).isEmpty, "\(what): IOMMU mappings left")
        if let state = kernel.interruptState(of: Self.address) {
            #expect(state.kind == .none && state.enabledVectors.isEmpty, "\(what): interrupts left enabled")
        }
        // The device is as the kernel model had it: it opens and closes again.
        let again = try PCIDevice.open(Self.address, backend: operation.backend, system: kernel)
        again.close()
        #expect(kernel.openFileCount == 0)
        return plan.failedCall == "pread" || plan.failedCall == "pwrite"
    }

    /// The count of operation x call-point pairs the suite covers, on a line of its own.
    @Test func pairsCovered() throws {
        var pairs = 0
        for operation in Self.operations { pairs += try Self.run(operation, failAt: nil).0.calls }
        #expect(pairs > 0)
        print("fault injection: \(Self.operations.count) operations, \(pairs) operation x call-point pairs, every call failed in turn")
    }
}
