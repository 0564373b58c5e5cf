import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Admin commands one by one, and shutdown.
@Suite struct NVMeAdminTests {
    @Test func numberOfQueuesIsGrantedAndReadBack() throws {
        let bench = try NVMeTestBench(driverOptions: { $0.queues = 32 })
        // The controller offers 16 pairs; the driver takes what it is granted.
        #expect(bench.driver.queueCount == 16)
        let granted = try bench.driver.adminCommand(.getFeature(0x07))
        #expect(granted == 15 | 15 << 16)
        let bad = #expect(throws: NVMeError.self) { try bench.driver.adminCommand(.getFeature(0x7e)) }
        #expect(bad == .failed(command: "Get Features (FID 0x7e)", status: .invalidField))
    }

    @Test func queuesAreCreatedAndDeletedWithTheRightStatuses() throws {
        let bench = try NVMeTestBench()
        let memory = try bench.device.dma.allocate(8192)
        let driver = bench.driver
        // Queue 1 exists; 17 is beyond what the controller offers.
        for id in [1, 17] {
            let e = #expect(throws: NVMeError.self) {
                try driver.adminCommand(.createCompletionQueue(id: id, entries: 16, memory: memory.deviceAddress, vector: nil))
            }
            #expect(e?.description.contains("Invalid Queue Identifier (SCT 0x1 command specific, SC 0x1)") == true)
        }
        try driver.adminCommand(.createCompletionQueue(id: 5, entries: 16, memory: memory.deviceAddress, vector: nil))
        let noCQ = #expect(throws: NVMeError.self) {
            try driver.adminCommand(.createSubmissionQueue(id: 5, entries: 16, memory: memory.deviceAddress, completionQueue: 6))
        }
        #expect(noCQ == .failed(command: "Create I/O Submission Queue", status: NVMeStatus(codeType: 1, code: 0)))
        let tooBig = #expect(throws: NVMeError.self) {
            try driver.adminCommand(.createSubmissionQueue(id: 5, entries: 2048, memory: memory.deviceAddress, completionQueue: 5))
        }
        #expect(tooBig == .failed(command: "Create I/O Submission Queue", status: NVMeStatus(codeType: 1, code: 2)))
        try driver.adminCommand(.createSubmissionQueue(id: 5, entries: 16, memory: memory.deviceAddress + 4096, completionQueue: 5))
        #expect(bench.controller.ioSubmissionQueues == [1, 5])
        let inUse = #expect(throws: NVMeError.self) { try driver.adminCommand(.deleteQueue(id: 5, submission: false)) }
        #expect(inUse == .failed(command: "Delete I/O Completion Queue", status: NVMeStatus(codeType: 1, code: 0x0c)))
        try driver.adminCommand(.deleteQueue(id: 5, submission: true))
        try driver.adminCommand(.deleteQueue(id: 5, submission: false))
        #expect(bench.controller.ioSubmissionQueues == [1])
        let unknown = #expect(throws: NVMeError.self) { try driver.adminCommand(NVMeCommand(opcode: 0x7f)) }
        #expect(unknown == .failed(command: "admin opcode 0x7f", status: .invalidOpcode))
    }

    @Test func abortOfACommandThatIsNotOutstandingSaysNotAborted() throws {
        let bench = try NVMeTestBench()
        #expect(try bench.driver.adminCommand(.abort(queue: 1, commandID: 3)) & 1 == 1)
    }

    @Test func identifyListsTheActiveNamespaces() throws {
        let bench = try NVMeTestBench(extra: [NVMeNamespace(blockCount: 8), NVMeNamespace(blockCount: 16)])
        #expect(bench.driver.namespaces.map(\.id) == [1, 2, 3])
        #expect(bench.driver.namespaces.map(\.size) == [4096, 8, 16])
        #expect(bench.driver.controller?.namespaceCount == 3)
    }

    @Test func shutdownWaitsForShutdownCompleteAndReleasesEverything() throws {
        let bench = try NVMeTestBench(driverOptions: { $0.queues = 2 })
        #expect(bench.device.dma.mappingCount > 0)
        #expect(bench.driver.shutDown())
        #expect(bench.controller.ioSubmissionQueues.isEmpty)
        #expect(bench.controller.status & 1 == 0)
        #expect(bench.device.dma.mappingCount == 0)
        #expect(bench.machine.kernel.interruptState(of: MockMachine.primary)?.kind == InterruptState.Kind.none)
        // A second shutdown has nothing to do.
        #expect(bench.driver.shutDown())
    }

    @Test func theDriverMatchesNVMeByClassAndRefusesOtherDevices() throws {
        let bench = try NVMeTestBench()
        #expect(try NVMeDriver.supports(bench.device))
        let machine = MockMachine(for: .iommufd)
        let edu = try machine.open(Devices.edu(), on: .iommufd)
        defer { edu.close() }
        #expect(try !NVMeDriver.supports(edu))
    }
}
