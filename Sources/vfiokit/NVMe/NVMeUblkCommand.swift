#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import VFIODrivers
import VFIOExport

/// `vfiokit nvme ublk ADDRESS`: serves a namespace as /dev/ublkbN until SIGTERM or SIGINT,
/// then stops the block device in order and shuts the controller down.
struct NVMeUblkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ublk",
        abstract: "Serve a namespace to the kernel as /dev/ublkbN (ublk_drv) until SIGTERM or SIGINT.",
        discussion: """
            One NVMe I/O queue pair per ublk queue: the ublk queue is served on the thread that owns the pair, \
            which busy-polls it while commands are outstanding (or, with --interrupts, sleeps until its MSI-X \
            vector fires). The block device has the namespace's size and logical block size; its largest request \
            is the controller's MDTS. On SIGTERM or SIGINT in-flight requests finish, /dev/ublkbN goes away, and \
            the controller is shut down.
            """)

    @OptionGroup var target: NVMeTarget

    @Option(help: "The namespace to serve.")
    var namespace: UInt32 = 1

    @Option(help: "ublk queues (each with its own NVMe queue pair and owner thread).")
    var queues = 1

    @Option(help: "Requests in flight per queue (at most the NVMe queue's entries − 1).")
    var depth = 64

    @Flag(help: "Refuse writes.")
    var readOnly = false

    @Flag(help: "Take NVMe completions by MSI-X interrupt instead of busy-polling while commands are outstanding.")
    var interrupts = false

    func validate() throws {
        guard (1...64).contains(queues) else { throw ValidationError("--queues \(queues) is outside 1…64") }
        guard (1...4096).contains(depth) else { throw ValidationError("--depth \(depth) is outside 1…4096") }
    }

    func run() throws {
        let stop = try StopSignals()

        var configuration = NVMeDriver.Configuration()
        configuration.polled = !interrupts
        configuration.queues = queues
        configuration.queueDepth = depth + 1
        let session = try target.open(configuration)
        defer { session.close() }
        let device: UblkDevice
        do {
            let backend = try NVMeUblkBackend(driver: session.driver, namespace: namespace, readOnly: readOnly)
            device = try UblkDevice.start(backend: backend, queues: queues, depth: depth)
        } catch {
            throw ValidationError(error.description)
        }
        let g = device.geometry
        print(
            "ublk: \(device.blockDevice) serves namespace \(namespace): \(g.blocks) blocks of \(g.blockSize) bytes, "
                + "\(device.info.nr_hw_queues) queue(s) of \(device.info.queue_depth), \(g.maxTransfer) bytes per request"
                + (g.readOnly ? ", read-only" : ""))
        fflush(nil)
        stop.wait()
        let errors = device.stop()
        let s = device.statistics
        print(
            "ublk: \(device.blockDevice) stopped and deleted after \(s.requests) requests (\(s.reads) reads, \(s.writes) writes, "
                + "\(s.flushes) flushes, \(s.discards) discards, \(s.writeZeroes) write-zeroes), \(s.bytesRead) bytes read, "
                + "\(s.bytesWritten) written, \(s.errors) answered with an error")
        for error in errors { print("ublk: \(error)") }
        guard errors.isEmpty else { throw ExitCode(1) }
    }
}
