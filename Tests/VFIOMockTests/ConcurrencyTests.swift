#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Dispatch
import SystemPackage
import Synchronization
import Testing
@testable import VFIOMock

@Suite struct ConcurrencyTests {
    /// Devices signal from several threads while the "framework" reads the BAR through
    /// pread and reprograms another vector: every signal on the stable vector arrives.
    @Test func concurrentSignalsAndIoctls() throws {
        let device = memoryDevice(msix: 4)
        let s = try LegacySetup(device)
        let bus = try #require(device.bus)
        let fds = try s.wire(index: VFIO_PCI_MSIX_IRQ_INDEX, count: 2)
        let stable = fds[0], churn = fds[1]
        let threads = 4, perThread = 500
        let kernel = s.kernel, fd = s.device
        DispatchQueue.concurrentPerform(iterations: threads + 1) { i in
            if i == threads {
                for n in 0..<200 {
                    let e: Int32 = n % 2 == 0 ? -1 : churn.rawValue
                    try? VFIOMockTests.setIRQs(
                        kernel, fd, index: VFIO_PCI_MSIX_IRQ_INDEX, start: 1, count: 1,
                        flags: UInt32(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER), payload: [e].payload)
                    _ = try? regionRead(kernel, fd, 0, offset: 0x100, width: 4)
                }
            } else {
                for _ in 0..<perThread {
                    bus.signalMSIX(vector: 0)
                    bus.signalMSIX(vector: 1)
                }
            }
        }
        var total: UInt64 = 0
        while true {
            let n = waitEvent(stable, milliseconds: 50)
            if n == 0 { break }
            total += n
        }
        #expect(total == UInt64(threads * perThread))
    }

    /// Threads map and unmap anonymous memory through the mock at once: the host reuses freed
    /// addresses at once, and memory a thread has just mapped stays registered (DMA-able) until
    /// that thread unmaps it, never dropped by another thread's unmap of the same addresses.
    @Test func mapAndUnmapFromManyThreads() throws {
        let kernel = MockKernel()
        let threads = 8, rounds = 5000
        let lost = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<rounds {
                guard
                    let p = try? kernel.mmap(
                        length: 4096, protection: PROT_READ | PROT_WRITE,
                        flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: nil, offset: 0)
                else { continue }
                if kernel.physicalAddress(of: p) == nil { lost.withLock { $0 += 1 } }
                try? kernel.munmap(p, length: 4096)
            }
        }
        #expect(lost.withLock { $0 } == 0, "mapped memory lost its registration to another thread's munmap")
    }
}
