import FoundationEssentials
import PCI
import SystemPackage
import TestSupport
import Testing
import VFIODaemon
import VFIODrivers
import VFIOHost
import VFIOKit
import VFIOMock
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's core on the mock kernel: attach, status, removal, isolation, refusal, recovery.
@Suite struct DriverHostTests {
    @Test func attachesRunsAndLeavesNothingBehindAfterShutdown() throws {
        let machine = try DaemonMachine(edu: [first], driver: .pciStub)
        defer { machine.removeStateDirectory() }
        let host = try machine.host([.init(address: first)], bind: true)
        try host.start()
        #expect(machine.driver(of: first) == "vfio-pci")
        #expect(eventually { (host.device(first)?.operations ?? 0) > 16 && (host.device(first)?.dma.mappings ?? 0) > 0 })
        let status = try #require(host.device(first))
        #expect(status.driver == "edu")
        #expect(status.state == "running")
        #expect(status.interrupts.first?.name == "MSI 0")
        #expect(status.interrupts.reduce(0) { $0 + $1.count } > 0)
        #expect(status.errors == 0)
        #expect(status.dma.bytes == 4096)
        #expect(!machine.kernel.dmaMappings(of: first).isEmpty)
        #expect(machine.kernel.interruptState(of: first)?.reqArmed == true)

        host.shutdown()
        #expect(machine.kernel.dmaMappings(of: first).isEmpty)
        #expect(machine.kernel.openFileCount == 0)
        #expect(machine.driver(of: first) == "pci-stub")
        // vfio-pci let go of the device, which it does only once userspace closed it.
        #expect(machine.kernel.interruptState(of: first) == nil)
        #expect(!FileManager.default.fileExists(atPath: machine.stateDirectory + "/daemon-bindings.json"))
        #expect(host.device(first)?.state == "stopped")
    }

    @Test func aRemovalRequestMidWorkReleasesThatDeviceAloneAndTheKernelUnbindCompletes() throws {
        let machine = try DaemonMachine(edu: [first, second])
        defer { machine.removeStateDirectory() }
        let host = try machine.host([.init(address: first), .init(address: second)])
        try host.start()
        #expect(eventually { (host.device(first)?.operations ?? 0) > 4 && (host.device(second)?.operations ?? 0) > 4 })

        // vfio-pci's unbind asks the user for the device (REQ) and waits; the mock refuses with EBUSY instead.
        let unbind = "/sys/bus/pci/devices/\(first)/driver/unbind"
        #expect(throws: Errno.resourceBusy) { try machine.kernel.writeText(unbind, first.description) }
        #expect(eventually { host.device(first)?.state == "removed" })
        #expect(host.device(first)?.detail?.contains("REQ") == true)
        #expect(machine.kernel.dmaMappings(of: first).isEmpty)
        try machine.kernel.writeText(unbind, first.description)
        #expect(machine.driver(of: first) == "none")

        let before = host.device(second)?.operations ?? 0
        #expect(eventually { (host.device(second)?.operations ?? 0) > before + 4 })
        #expect(host.device(second)?.state == "running")

        host.shutdown()
        #expect(machine.kernel.interruptState(of: second)?.kind == InterruptState.Kind.none)
        #expect(machine.kernel.interruptState(of: second)?.reqArmed == false)
        #expect(machine.kernel.dmaMappings(of: second).isEmpty)
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func aDriverThatThrowsInStartIsReportedAndReleasedWhileOthersRun() throws {
        let machine = try DaemonMachine(edu: [first, second])
        defer { machine.removeStateDirectory() }
        let host = try machine.host(
            [.init(address: first, driver: RefusingDriver.name), .init(address: second)],
            drivers: DriverRegistry.all + [RefusingDriver.self])
        try host.start()
        defer { host.shutdown() }
        let failed = try #require(host.device(first))
        #expect(failed.state == "failed")
        #expect(failed.detail == "start failed: the refusing test driver will not start")
        #expect(machine.kernel.interruptState(of: first)?.kind == InterruptState.Kind.none)
        #expect(machine.kernel.interruptState(of: first)?.reqArmed == false)
        #expect(eventually { (host.device(second)?.operations ?? 0) > 4 })
    }

    /// Two functions of one IOMMU group: one context for both, the second held quiet by the stub.
    @Test func twoFunctionsOfOneGroupShareOneContextTheStubHoldingOne() throws {
        let machine = try DaemonMachine(edu: [first])
        defer { machine.removeStateDirectory() }
        try machine.kernel.plug(EduDevice(), at: second, iommuGroup: 0)
        let host = try machine.host([.init(address: first, driver: "edu"), .init(address: second, driver: StubDriver.name)])
        try host.start()
        #expect(eventually { (host.device(first)?.operations ?? 0) > 4 })
        let held = try #require(host.device(second))
        #expect(held.state == "running" && held.driver == "stub")
        #expect(held.context == "group 0" && host.device(first)?.context == "group 0")
        #expect(held.interrupts.isEmpty && held.operations == 0)
        #expect(machine.kernel.interruptState(of: second)?.kind == InterruptState.Kind.none)
        host.shutdown()
        #expect(machine.kernel.openFileCount == 0)
        #expect(host.device(second)?.state == "stopped")
    }

    @Test func startFailsWhenNoDeviceCanBeStarted() throws {
        let machine = try DaemonMachine(edu: [first])
        defer { machine.removeStateDirectory() }
        let host = try machine.host([.init(address: first, driver: RefusingDriver.name)], drivers: [RefusingDriver.self])
        #expect(throws: DaemonError.setup("no device could be started: \(first): start failed: the refusing test driver will not start")) {
            try host.start()
        }
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func aDeviceNoDriverMatchesIsReportedWithItsIDs() throws {
        let machine = try DaemonMachine(edu: [first, second])
        defer { machine.removeStateDirectory() }
        let host = try machine.host([.init(address: first), .init(address: second)], drivers: [MSIXLoopbackDriver.self])
        #expect(throws: DaemonError.self) { try host.start() }
        let status = try #require(host.device(first))
        #expect(status.detail?.contains("no driver matches \(first) (1234:11e8, class ") == true)
    }

    @Test func aSecondDaemonOnTheSameStateIsRefusedNamingThePid() throws {
        let machine = try DaemonMachine(edu: [first])
        defer { machine.removeStateDirectory() }
        let host = try machine.host([.init(address: first)])
        try host.start()
        defer { host.shutdown() }
        let other = try machine.host([.init(address: first)])
        let error = #expect(throws: DaemonError.self) { try other.start() }
        #expect(error == .alreadyRunning(pid: getpid(), lock: machine.stateDirectory + "/daemon.lock"))
        #expect(error?.description.contains("pid \(getpid())") == true)
        #expect(host.device(first)?.state == "running")
    }

    @Test func aRefusedBindLeavesNothingToRestore() throws {
        // first's group also holds second, which a kernel driver owns: the group is not viable.
        let machine = try DaemonMachine(edu: [], driver: .pciStub)
        defer { machine.removeStateDirectory() }
        try machine.kernel.plug(EduDevice(), at: first, iommuGroup: 7, driver: .pciStub)
        try machine.kernel.plug(EduDevice(), at: second, iommuGroup: 7, driver: .kernel("snd_hda_intel"))
        let logs = CapturedLogs()
        let configuration = DaemonConfiguration(
            devices: [.init(address: first)], bind: true, stateDirectory: machine.stateDirectory, workInterval: .milliseconds(1))
        let host = try DriverHost(configuration: configuration, system: machine.kernel, simulated: true, logger: logs.logger())
        #expect(throws: DaemonError.self) { try host.start() }
        host.shutdown()
        #expect(machine.driver(of: first) == "pci-stub")
        #expect(logs.all.filter { $0.message.contains("cannot restore") }.isEmpty, "\(logs.all.map(\.line))")
        #expect(!FileManager.default.fileExists(atPath: machine.stateDirectory + "/daemon-bindings.json"))
    }

    @Test func aKilledDaemonsBindingsAreRestoredByTheNextStart() throws {
        let machine = try DaemonMachine(edu: [first], driver: .pciStub)
        defer { machine.removeStateDirectory() }
        // What a daemon killed while running leaves: the device on vfio-pci, its record, the journal.
        let tree = HostTree(root: "/", system: machine.kernel)
        let binding = HostBinding(
            discovery: PCIDiscovery(tree: tree, enumerator: SysfsPCIEnumerator(tree: tree)),
            store: BindingStateStore(directory: machine.stateDirectory))
        _ = try binding.bind(BindRequest(addresses: [first]))
        #expect(machine.driver(of: first) == "vfio-pci")
        let journal = machine.stateDirectory + "/daemon-bindings.json"
        try Data(#"{"pid": 99999, "devices": ["0000:00:04.0"]}"#.utf8).write(to: URL(fileURLWithPath: journal))

        let host = try machine.host([])
        try host.start()
        host.shutdown()
        #expect(machine.driver(of: first) == "pci-stub")
        #expect(!FileManager.default.fileExists(atPath: journal))
    }
}

/// Hot addition on the mock: a configured device that appears later is attached.
@Suite struct HotAdditionTests {
    @Test func aConfiguredDeviceThatAppearsLaterIsAttachedOnItsAddEvent() throws {
        let machine = try DaemonMachine(edu: [first])
        defer { machine.removeStateDirectory() }
        let host = try machine.host([.init(address: first), .init(address: second)])
        try host.start()
        defer { host.shutdown() }
        #expect(host.device(second) == nil)
        host.deviceAdded(pciAddress("0000:00:09.0"))  // not in the configuration: ignored
        #expect(host.status().devices.count == 1)

        try machine.kernel.plug(EduDevice(), at: second)
        host.deviceAdded(second)
        #expect(host.device(second)?.state == "running")
        #expect(eventually { (host.device(second)?.operations ?? 0) > 4 })
        #expect(host.device(first)?.state == "running")
    }
}
