import Dispatch
import Synchronization
import SystemPackage
import Testing
@testable import VFIOKit

/// The event loop over real eventfds of the host kernel.
@Suite struct EventLoopTests {
    let system = HostSystemCalls.shared

    func makeSource() throws -> InterruptSource {
        let fd = try system.eventfd(initialValue: 0, flags: 0o4000)  // EFD_NONBLOCK
        return InterruptSource(index: .msix, vector: 0, fd: fd, width: 8, ownsFile: true)
    }

    /// Adds `times` to the eventfd in one write, so a running loop cannot see part of it.
    func signal(_ s: InterruptSource, times: Int = 1) throws {
        var count = UInt64(times)
        _ = try withUnsafeBytes(of: &count) { (b) throws(Errno) in try system.write(s.fd, from: b) }
    }

    @Test func handlerGetsTheCoalescedCount() throws {
        let loop = try EventLoop()
        let source = try makeSource()
        defer { try? system.close(source.fd) }
        let got = Mutex<[UInt64]>([])
        let done = DispatchSemaphore(value: 0)
        try loop.register(source) { count in
            got.withLock { $0.append(count) }
            done.signal()
        }
        try signal(source, times: 3)
        try loop.start()
        #expect(done.wait(timeout: .now() + 5) == .success)
        loop.stop()
        #expect(got.withLock { $0 } == [3])
    }

    @Test func unregisterStopsDelivery() throws {
        let loop = try EventLoop()
        let source = try makeSource()
        defer { try? system.close(source.fd) }
        let calls = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        let r = try loop.register(source) { _ in
            calls.add(1, ordering: .relaxed)
            done.signal()
        }
        try loop.start()
        try signal(source)
        #expect(done.wait(timeout: .now() + 5) == .success)
        loop.unregister(r)
        try signal(source)
        // A second source proves the loop is still dispatching after the first went away.
        let other = try makeSource()
        defer { try? system.close(other.fd) }
        let otherDone = DispatchSemaphore(value: 0)
        try loop.register(other) { _ in otherDone.signal() }
        try signal(other)
        #expect(otherDone.wait(timeout: .now() + 5) == .success)
        loop.stop()
        #expect(calls.load(ordering: .relaxed) == 1)
    }

    @Test func streamYieldsEachFiring() async throws {
        let loop = try EventLoop()
        let source = try makeSource()
        defer { try? system.close(source.fd) }
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
        defer { for s in sources { try? system.close(s.fd) } }
        let seen = Mutex<Set<Int>>([])
        let done = DispatchSemaphore(value: 0)
        for (i, s) in sources.enumerated() {
            try loop.register(s) { _ in
                seen.withLock { _ = $0.insert(i) }
                done.signal()
            }
        }
        try loop.start()
        for s in sources.reversed() { try signal(s) }
        for _ in sources { #expect(done.wait(timeout: .now() + 5) == .success) }
        loop.stop()
        #expect(seen.withLock { $0 } == Set(0..<32))
    }
}
