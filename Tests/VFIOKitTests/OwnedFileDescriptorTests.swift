import SystemPackage
import Testing
@testable import VFIOKit
import VFIOMock

/// Owned descriptors: one owner closes each file once, a failed close is reported with the
/// file's name, and the reactors' files (the timerfd too) come and go through the seam.
@Suite struct OwnedFileDescriptorTests {
    /// A seam that records closes and made files, and fails the calls `failing` names.
    func seam(
        failing: @escaping @Sendable (InterposedKernel.Call) -> Bool = { _ in false }
    )
        -> (InterposedKernel, Arrivals<InterposedKernel.Call>)
    {
        let log = Arrivals<InterposedKernel.Call>()
        let seam = InterposedKernel(MockKernel()) { (call) throws(Errno) in
            switch call {
            case .close, .eventfd, .epollCreate, .periodicTimer, .epollControl: log.record(call)
            default: break
            }
            if failing(call) { throw Errno.ioError }
        }
        return (seam, log)
    }

    @Test func aFailedCloseIsReportedWithTheFilesName() throws {
        let (seam, log) = seam { if case .close = $0 { true } else { false } }
        let fd = OwnedFileDescriptor(try seam.eventfd(initialValue: 0, flags: 0), name: "the test's eventfd", system: seam)
        let raw = fd.rawValue
        var failure: VFIOError?
        do { try fd.close() } catch { failure = error }
        #expect(failure == .systemCall(operation: SystemCall("close", detail: "the test's eventfd (fd \(raw.rawValue))"), errno: .ioError))
        #expect(log.all.filter { $0 == .close(raw) }.count == 1)
    }

    @Test func droppingOneClosesItAndReleasingOneDoesNot() throws {
        let (seam, log) = seam()
        var raw = FileDescriptor(rawValue: -1)
        do {
            let dropped = OwnedFileDescriptor(try seam.eventfd(initialValue: 0, flags: 0), name: "dropped", system: seam)
            raw = dropped.rawValue
        }
        #expect(log.all.contains(.close(raw)))
        let closes = log.all.filter(\.isClose).count
        let kept = OwnedFileDescriptor(try seam.eventfd(initialValue: 0, flags: 0), name: "kept", system: seam).release()
        #expect(log.all.filter(\.isClose).count == closes)
        try seam.close(kept)
    }

    @Test func aQueueReactorsTimerIsMadeThroughTheSeamAndAFailureClosesWhatWasMade() throws {
        let (seam, log) = seam { $0 == .periodicTimer }
        #expect(throws: VFIOError.self) { _ = try QueueReactor(name: "q", system: seam) }
        #expect(log.all.filter { !$0.isClose } == [.epollCreate, .eventfd, .periodicTimer])
        #expect(log.all.filter(\.isClose).count == 2)
    }

    @Test func closingAQueueReactorStopsItAndClosesItsThreeFiles() throws {
        let (seam, log) = seam()
        let reactor = try QueueReactor(name: "q", system: seam, tickInterval: .milliseconds(1))
        let ticks = Arrivals<Int>()
        reactor.onTick = { ticks.record(1) }
        try reactor.start()
        #expect(ticks.wait(for: 2).count >= 2)
        try reactor.close()
        #expect(log.all.filter(\.isClose).count == 3)
        try reactor.close()
        #expect(log.all.filter(\.isClose).count == 3)
    }

    @Test func aClosedQueueReactorWritesToNoDescriptor() throws {
        let log = Arrivals<InterposedKernel.Call>()
        let seam = InterposedKernel(MockKernel()) { (call) throws(Errno) in
            switch call {
            case .close, .write: log.record(call)
            default: break
            }
        }
        let reactor = try QueueReactor(name: "q", system: seam)
        try reactor.start()
        try reactor.close()
        let closed = log.all.count
        #expect(log.all.filter(\.isClose).count == 3)
        // Its three numbers may belong to other files by now: a wake or stop must not write there.
        reactor.stop()
        reactor.wake()
        try reactor.close()
        #expect(log.all.count == closed, "\(log.all.dropFirst(closed))")
    }

    @Test func closingAnEventLoopEndsItsRegistrationsAndClosesItsFiles() throws {
        let (seam, log) = seam()
        let loop = try EventLoop(system: seam)
        let source = InterruptSource(
            eventfd: try seam.eventfd(initialValue: 0, flags: 0o4000), address: MockMachine.primary, index: .msix, vector: 0,
            system: seam)
        let registration = try loop.register(source) { _ in }
        try loop.start()
        try loop.close()
        #expect(log.all.filter(\.isClose).count == 2)
        // close removed the source from epoll before closing the set; ending the registration
        // afterwards touches no epoll set.
        let del = InterposedKernel.Call.epollControl(operation: 2, file: source.fd)
        #expect(log.all.filter { $0 == del }.count == 1)
        #expect(log.all.firstIndex(of: del)! < log.all.firstIndex(where: \.isClose)!)
        let before = log.all.count
        registration.end()
        #expect(log.all.count == before)
        source.endRegistrations()
        source.unwired()
    }
}

extension InterposedKernel.Call {
    var isClose: Bool { if case .close = self { true } else { false } }
}
