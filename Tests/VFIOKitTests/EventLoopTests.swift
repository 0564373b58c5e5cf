#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import SystemPackage
import Testing
@testable import VFIOKit
import VFIOMock

/// The event loop over real eventfds of the host kernel.
@Suite struct EventLoopTests {
    let system = HostSystemCalls.shared

    func makeSource() throws -> InterruptSource {
        let fd = try system.eventfd(initialValue: 0, flags: 0o4000)  // EFD_NONBLOCK
        return InterruptSource(eventfd: fd, address: MockMachine.primary, index: .msix, vector: 0, system: system)
    }

    /// Does what disabling its index does: ends its registrations and closes its eventfd.
    func retire(_ source: InterruptSource) {
        source.endRegistrations()
        source.unwired()
    }

    /// Adds `times` to the eventfd in one write, so a running loop cannot see part of it.
    func signal(_ s: InterruptSource, times: Int = 1) throws {
        var count = UInt64(times)
        _ = try withUnsafeBytes(of: &count) { (b) throws(Errno) in try system.write(s.fd, from: b) }
    }

    /// A fresh source's handler runs: the loop still dispatches (after another went away).
    func expectStillDispatching(_ loop: EventLoop) throws {
        let other = try makeSource()
        defer { retire(other) }
        let calls = Arrivals<UInt64>()
        let registration = try loop.register(other) { calls.record($0) }
        try signal(other)
        #expect(calls.wait(for: 1) == [1])
        registration.end()
    }

    @Test func handlerGetsTheCoalescedCount() throws {
        let loop = try EventLoop()
        let source = try makeSource()
        defer { retire(source) }
        let got = Arrivals<UInt64>()
        let registration = try loop.register(source) { got.record($0) }
        try signal(source, times: 3)
        try loop.start()
        #expect(got.wait(for: 1) == [3])
        loop.stop()
        registration.end()
    }

    @Test func endingTheRegistrationStopsDelivery() throws {
        let loop = try EventLoop()
        let source = try makeSource()
        defer { retire(source) }
        let calls = Arrivals<UInt64>()
        let registration = try loop.register(source) { calls.record($0) }
        try loop.start()
        defer { loop.stop() }
        try signal(source)
        #expect(calls.wait(for: 1) == [1])
        registration.end()
        try signal(source)
        try expectStillDispatching(loop)
        #expect(calls.all == [1])
    }

    @Test func aRegistrationNotKeptEndsAtOnce() throws {
        let calls = Arrivals<InterposedKernel.Call>()
        let seam = InterposedKernel(MockKernel()) { call in
            if case .epollControl = call { calls.record(call) }
        }
        let loop = try EventLoop(system: seam)
        let source = try makeSource()
        defer { retire(source) }
        _ = try loop.register(source) { _ in }
        let add = InterposedKernel.Call.epollControl(operation: 1, file: source.fd)
        let del = InterposedKernel.Call.epollControl(operation: 2, file: source.fd)
        #expect(calls.all.suffix(2) == [add, del])
        // The slot is free again, so a loop of one slot takes another registration.
        let small = try EventLoop(capacity: 1)
        _ = try small.register(source) { _ in }
        let kept = try small.register(source) { _ in }
        let other = try makeSource()
        defer { retire(other) }
        #expect(throws: VFIOError.eventLoopFull(capacity: 1)) { _ = try small.register(other) { _ in } }
        kept.end()
    }

    @Test func streamYieldsEachFiring() async throws {
        let loop = try EventLoop()
        let source = try makeSource()
        defer { retire(source) }
        try loop.start()
        let stream = try loop.stream(source)
        var iterator = stream.makeAsyncIterator()
        try signal(source)
        #expect(await iterator.next() == 1)
        // Two firings arrive as one count of 2 or as two counts of 1, depending on when the
        // loop reads the eventfd; either way nothing is lost or invented.
        try signal(source, times: 2)
        var total: UInt64 = 0
        while total < 2, let count = await iterator.next() {
            #expect(count >= 1)
            total += count
        }
        #expect(total == 2)
        loop.stop()
    }

    @Test func manySourcesEachReachTheirOwnHandler() throws {
        let loop = try EventLoop()
        let sources = try (0..<32).map { _ in try makeSource() }
        defer { sources.forEach(retire) }
        let seen = Arrivals<Int>()
        var registrations = EventLoop.Registrations()
        for (i, s) in sources.enumerated() {
            registrations.append(try loop.register(s) { _ in seen.record(i) })
        }
        #expect(registrations.count == 32)
        try loop.start()
        for s in sources.reversed() { try signal(s) }
        #expect(Set(seen.wait(for: 32)) == Set(0..<32))
        loop.stop()
        registrations.end()
    }

    @Test func endingFromAnotherThreadWaitsForTheRunningHandler() throws {
        let loop = try EventLoop()
        let source = try makeSource()
        defer { retire(source) }
        let order = Arrivals<String>()
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let registration = Mutex<EventLoop.Registration?>(
            try loop.register(source) { _ in
                entered.signal()
                release.wait()
                order.record("handler returned")
            })
        try loop.start()
        defer { loop.stop() }
        try signal(source)
        #expect(entered.wait(timeout: .now() + 10) == .success)
        DispatchQueue.global().async {
            registration.withLock { $0 = nil }
            order.record("ended")
        }
        // Give a registration that did not wait every chance to return first.
        usleep(50_000)
        release.signal()
        #expect(order.wait(for: 2) == ["handler returned", "ended"])
    }

    @Test func endingFromInsideItsHandlerTakesEffectWhenItReturns() throws {
        let loop = try EventLoop()
        let source = try makeSource()
        defer { retire(source) }
        let calls = Arrivals<UInt64>()
        let registration = Mutex<EventLoop.Registration?>(nil)
        try registration.withLock { r in
            r = try loop.register(source) { count in
                registration.withLock { $0 = nil }
                calls.record(count)
            }
        }
        try loop.start()
        defer { loop.stop() }
        try signal(source)
        #expect(calls.wait(for: 1) == [1])
        try signal(source)
        try expectStillDispatching(loop)
        #expect(calls.all == [1])
    }

    @Test func stopFromAHandlerRunsNoFurtherHandler() throws {
        let loop = try EventLoop()
        let sources = try (0..<4).map { _ in try makeSource() }
        defer { sources.forEach(retire) }
        let ran = Arrivals<Int>()
        var registrations = EventLoop.Registrations()
        for (i, s) in sources.enumerated() {
            registrations.append(
                try loop.register(s) { _ in
                    ran.record(i)
                    loop.stop()
                })
        }
        // All four are ready before the loop starts, so one epoll_wait reports them together.
        for s in sources { try signal(s) }
        try loop.start()
        #expect(ran.wait(for: 1).count == 1)
        loop.stop()  // from this thread: waits for the loop thread to exit
        #expect(ran.all.count == 1)
        #expect(loop.lifecycle.withLock { $0.started == $0.exited })
        registrations.end()
    }

    @Test func stopFromSeveralThreadsReturnsOnlyOnceTheThreadExited() throws {
        for _ in 0..<20 {
            let loop = try EventLoop()
            try loop.start()
            let exitedWhenReturned = Mutex<[Bool]>([])
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                loop.stop()
                let exited = loop.lifecycle.withLock { $0.started == $0.exited }
                exitedWhenReturned.withLock { $0.append(exited) }
            }
            #expect(exitedWhenReturned.withLock { $0 } == [true, true, true, true])
        }
    }

    @Test func aFailingEpollWaitStopsTheLoopAndSaysWhy() throws {
        let waits = Arrivals<Int>()
        let failing = InterposedKernel(MockKernel()) { (call) throws(Errno) in
            guard case .epollWait = call else { return }
            waits.record(1)
            throw .badFileDescriptor
        }
        let loop = try EventLoop(system: failing)
        let source = try makeSource()
        defer { retire(source) }
        try loop.start()
        // The thread exits by itself; wait for it as stop would, without asking it to stop.
        loop.lifecycle.wait { $0.started == 1 && $0.exited == 1 }
        #expect(waits.all.count == 1)  // it did not retry
        #expect(loop.failure == .eventLoopFailed(errno: .badFileDescriptor))
        #expect(throws: VFIOError.eventLoopFailed(errno: .badFileDescriptor)) { _ = try loop.register(source) { _ in } }
        #expect(throws: VFIOError.eventLoopFailed(errno: .badFileDescriptor)) { try loop.start() }
        loop.stop()  // nothing to stop
        #expect(waits.all.count == 1)
        #expect(loop.failure?.description.contains("epoll_wait failed") == true)
    }
}
