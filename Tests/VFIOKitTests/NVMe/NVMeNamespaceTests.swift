import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Namespaces: the Active Namespace ID list past one page, LBA formats, metadata-bearing
/// formats refused, and a rescan after namespaces come and go.
@Suite struct NVMeNamespaceTests {
    @Test func everyActiveNamespaceIsFoundPastOnePageOfTheList() async throws {
        let extra = (0..<1029).map { _ in NVMeNamespace(blockCount: 8) }
        let bench = try NVMeTestBench(blocks: 16, extra: extra)
        #expect(bench.driver.namespaces.map(\.id) == Array(1...1030))
        let out = try bench.patterned(4096, seed: 8)
        try await bench.driver.write(namespace: 1030, lba: 0, blocks: 8, from: out)
        #expect(extra.last!.read(lba: 0, count: 8) == Array(out.bytes))
        // The controller's own paging: the list after 1024 holds the rest, and FFFFFFFEh is invalid.
        let page = try bench.device.dma.allocate(4096)
        try bench.driver.adminCommand(.identify(cns: 2, namespaceID: 1024, page: page.deviceAddress))
        #expect((0..<7).map { page.bytes.load(fromByteOffset: 4 * $0, as: UInt32.self) } == [1025, 1026, 1027, 1028, 1029, 1030, 0])
        let invalid = #expect(throws: NVMeError.self) {
            try bench.driver.adminCommand(.identify(cns: 2, namespaceID: 0xffff_fffe, page: page.deviceAddress))
        }
        #expect(invalid == .failed(command: "Identify (CNS 2)", status: .invalidNamespace))
    }

    @Test func formatsAreReportedAndAMetadataFormatIsRefusedClearly() async throws {
        let withMetadata = NVMeNamespace(blockCount: 64, blockSize: 4096, metadataSize: 8)
        let bench = try NVMeTestBench(extra: [withMetadata])
        let plain = bench.driver.namespaces[0], meta = bench.driver.namespaces[1]
        #expect(plain.formats == [NVMeLBAFormat(dataSize: 512, metadataSize: 0)] && plain.formatIndex == 0)
        #expect(meta.formats == [NVMeLBAFormat(dataSize: 4096, metadataSize: 0), NVMeLBAFormat(dataSize: 4096, metadataSize: 8)])
        #expect(meta.formatIndex == 1 && meta.metadataSize == 8 && meta.blockSize == 4096 && !meta.metadataExtended)

        let buffer = try bench.patterned(4096, seed: 1)
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.write(namespace: 2, lba: 0, blocks: 1, from: buffer) }
        #expect(error?.description.contains("namespace 2 uses LBA format 1 with 8 bytes of metadata per 4096-byte block") == true)
        #expect(error?.description.contains("a format without metadata (here: 0)") == true)
        await #expect(throws: NVMeError.self) { try await bench.driver.read(namespace: 2, lba: 0, blocks: 1, into: buffer) }
        await #expect(throws: NVMeError.self) { try await bench.driver.writeZeroes(namespace: 2, lba: 0, blocks: 1) }
        #expect(withMetadata.read(lba: 0, count: 1).allSatisfy { $0 == 0 })
        // Namespace 1 is unaffected.
        try await bench.driver.write(namespace: 1, lba: 0, blocks: 8, from: buffer)
    }

    @Test func aRescanFindsNamespacesThatCameAndWent() async throws {
        let second = NVMeNamespace(blockCount: 128)
        let bench = try NVMeTestBench(extra: [second, NVMeNamespace(blockCount: 64)])
        #expect(try bench.driver.rescanNamespaces().isEmpty)

        bench.controller.setNamespace(2, attached: false)
        let gone = try bench.driver.rescanNamespaces()
        #expect(gone == NVMeNamespaceChanges(added: [], removed: [2], changed: []))
        #expect(bench.driver.namespaces.map(\.id) == [1, 3])
        let buffer = try bench.patterned(512, seed: 2)
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.write(namespace: 2, lba: 0, blocks: 1, from: buffer) }
        #expect(error == .invalidArgument("namespace 2 does not exist: the active namespaces are [1, 3]"))
        // Identify of the inactive namespace is all zeroes.
        let page = try bench.device.dma.allocate(4096)
        page.bytes.initializeMemory(as: UInt8.self, repeating: 0xff)
        try bench.driver.adminCommand(.identify(cns: 0, namespaceID: 2, page: page.deviceAddress))
        #expect(page.bytes.allSatisfy { $0 == 0 })

        bench.controller.setNamespace(2, attached: true)
        #expect(try bench.driver.rescanNamespaces() == NVMeNamespaceChanges(added: [2], removed: [], changed: []))
        try await bench.driver.write(namespace: 2, lba: 127, blocks: 1, from: buffer)
        #expect(second.read(lba: 127, count: 1) == Array(buffer.bytes[0..<512]))
    }
}
