import Dispatch
import Foundation
import Synchronization
import SystemPackage
import Testing
import VFIOKit
import VFIOMock

/// One owner per interrupt: a source owns its eventfd, a registration is a token, and disabling
/// an index ends its registrations before its eventfds close.
@Suite struct InterruptOwnershipTests {
    @Test(arguments: [Backend.legacy, .iommufd])
    func anOldTokenCannotTouchARegistrationOnTheSameFdNumber(_ backend: Backend) throws {
        let machine = MockMachine()
        let log = Arrivals<InterposedKernel.Call>()
        let seam = InterposedKernel(machine.kernel) { call in
            switch call {
            case .close, .epollControl: log.record(call)
            default: break
            }
        }
        try machine.kernel.plug(Devices.memory(msix: 2), at: MockMachine.primary)
        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: seam)
        defer { device.close() }
        let loop = try EventLoop(system: seam)
        try loop.start()
        defer { loop.stop() }
        let arrivals = Arrivals<String>()
        // The vector's eventfds take one high number, held until then by a placeholder:
        // parallel tests open files at the lowest free numbers, so none takes it between its
        // close and its reuse.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let placeholder = fcntl(0, F_DUPFD_CLOEXEC, Int32(limit.rlim_cur / 2))
        try #require(placeholder >= 0)
        seam.placeNextEventfd(at: FileDescriptor(rawValue: placeholder))

        let old = try #require(try device.interrupts.enable(.msix).first)
        let oldToken = try loop.register(old) { _ in arrivals.record("old") }
        try device.interrupts.disable(.msix)
        seam.placeNextEventfd(at: old.fd)
        let new = try #require(try device.interrupts.enable(.msix).first)
        try #require(new !== old && new.fd == old.fd, "the eventfd number was not reused")
        let newToken = try loop.register(new) { _ in arrivals.record("new") }
        #expect(throws: VFIOError.interruptSourceRetired(MockMachine.primary, .msix, vector: 0)) { _ = try loop.register(old) { _ in } }

        oldToken.end()
        try device.interrupts.trigger(.msix, vector: 0)
        #expect(arrivals.wait(for: 1) == ["new"])

        // On the seam, the number was closed only while in no epoll set, and never removed
        // from one while closed: no stale number reached epoll_ctl.
        let fd = old.fd
        let add = InterposedKernel.Call.epollControl(operation: 1, file: fd)
        let del = InterposedKernel.Call.epollControl(operation: 2, file: fd)
        let calls = log.all.filter { $0 == .close(fd) || $0 == add || $0 == del }
        #expect(calls.prefix(3) == [add, del, .close(fd)])
        #expect(calls.last == add)
        var inEpoll = false
        for call in calls {
            switch call {
            case add: inEpoll = true
            case del:
                #expect(inEpoll, "EPOLL_CTL_DEL of \(fd) while it was in no epoll set")
                inEpoll = false
            default: #expect(!inEpoll, "\(fd) closed while still in an epoll set")
            }
        }
        newToken.end()
    }

    @Test func endingATokenLeavesTheSourceEnabledForTheNextRegistration() throws {
        let (machine, _, device) = try MockMachine.opening(Devices.memory(msix: 1), on: .legacy)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let source = try #require(try device.interrupts.enable(.msix).first)
        let first = Arrivals<Int>()
        try loop.register(source) { _ in first.record(1) }.end()
        // Still wired and open: the kernel's next message reaches a new registration.
        let second = Arrivals<Int>()
        let token = try loop.register(source) { _ in second.record(2) }
        try device.interrupts.trigger(.msix, vector: 0)
        #expect(second.wait(for: 1) == [2])
        #expect(first.all.isEmpty)
        token.end()
    }

    @Test func disablingEndsRegistrationsAndTheHandlerNeverRunsAgain() throws {
        let (machine, _, device) = try MockMachine.opening(Devices.memory(msix: 4), on: .iommufd)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let sources = try device.interrupts.enable(.msix, vectors: 4)
        let arrivals = Arrivals<Int>()
        var registrations = EventLoop.Registrations()
        for s in sources { registrations.append(try loop.register(s) { _ in arrivals.record(s.vector) }) }
        try device.interrupts.trigger(.msix, vector: 2)
        #expect(arrivals.wait(for: 1) == [2])
        try device.interrupts.disable(.msix)
        // The loop still holds the old eventfds' numbers in no registration: a new index on
        // different sources delivers only to its own handler.
        let again = try device.interrupts.enable(.msix, vectors: 4)
        let fresh = Arrivals<Int>()
        let token = try loop.register(again[2]) { _ in fresh.record(2) }
        try device.interrupts.trigger(.msix, vector: 2)
        #expect(fresh.wait(for: 1) == [2])
        #expect(arrivals.all == [2])
        registrations.end()
        token.end()
    }

    @Test func enableGrowAndDisableRacingLeaveTheKernelAsRecorded() throws {
        for dynamic in [true, false] {
            let machine = MockMachine { $0.dynamicMSIX = dynamic }
            let device = try machine.open(Devices.memory(msix: 8), on: .iommufd)
            defer { device.close() }
            for round in 0..<150 {
                // Four threads released together, each with one operation.
                let ready = Atomic<Int>(0)
                let done = DispatchGroup()
                for thread in 0..<4 {
                    done.enter()
                    Thread.detachNewThread {
                        defer { done.leave() }
                        ready.add(1, ordering: .acquiringAndReleasing)
                        while ready.load(ordering: .acquiring) < 4 { sched_yield() }
                        let count = (round + thread) % 8 + 1
                        switch (round + thread) % 3 {
                        case 0: _ = try? device.interrupts.enable(.msix, vectors: count)
                        case 1: _ = try? device.interrupts.grow(.msix, to: count)
                        default: try? device.interrupts.disable(.msix)
                        }
                    }
                }
                done.wait()
                let recorded = device.interrupts.sources(.msix)
                let state = try #require(machine.kernel.interruptState(of: MockMachine.primary))
                try #require(
                    state.enabledVectors == recorded.map(\.vector),
                    "round \(round): the kernel wires \(state.enabledVectors), Interrupts records \(recorded.map(\.vector))")
                try #require(state.kind == (recorded.isEmpty ? .none : .msix))
                // Each recorded eventfd is the one the kernel signals for its vector.
                for source in recorded {
                    try device.interrupts.trigger(.msix, vector: source.vector)
                    try #require(try machine.takeCount(source) == 1, "round \(round): \(source) is not the eventfd the kernel signals")
                }
            }
        }
    }
}
