import FoundationEssentials
import PCI
import Testing
@testable import VFIODaemon

/// The --config file and how devices are put into IOMMU contexts.
@Suite struct ConfigurationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-config-\(UInt64.random(in: 0 ... .max)).json")
            .path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func theShippedExampleParses() throws {
        let path = Self.repository.appendingPathComponent("systemd/daemon.json").path
        let devices = try ConfigurationFile.load(path).parsedDevices(path: path)
        #expect(devices.map(\.driver) == ["edu", "msix-loopback"])
        #expect(devices.map(\.address.description) == ["0000:00:03.0", "0000:00:05.0"])
    }

    @Test func readsEveryField() throws {
        let path = try write(
            #"{"bind": true, "isolate": true, "backend": "legacy", "devices": [{"address": "03:00.0", "driver": "edu", "context": "a"}]}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try ConfigurationFile.load(path)
        #expect(file.bind == true)
        #expect(file.isolate == true)
        #expect(file.backend == "legacy")
        #expect(try file.parsedDevices(path: path) == [.init(address: pciAddress("0000:03:00.0"), driver: "edu", context: "a")])
    }

    @Test func parsesBytesAsTheFileWouldBeRead() throws {
        let file = try ConfigurationFile.parse(Data(#"{"devices": [{"address": "00:03.0", "context": "b"}]}"#.utf8), path: "inline.json")
        #expect(file.bind == nil && file.isolate == nil && file.backend == nil)
        #expect(try file.parsedDevices(path: "inline.json") == [.init(address: pciAddress("0000:00:03.0"), context: "b")])
        let error = #expect(throws: DaemonError.self) { try ConfigurationFile.parse(Data("{".utf8), path: "inline.json") }
        #expect(error?.description.contains("inline.json") == true)
    }

    @Test(arguments: [
        (#"{"devices": [{"address": "zz"}]}"#, "\"zz\" is not a PCI address"),
        (#"{"devices": [{"address": "03:00.0"}, {"address": "0000:03:00.0"}]}"#, "0000:03:00.0 is listed twice"),
        (#"{"backend": "fast", "devices": [{"address": "03:00.0"}]}"#, "backend \"fast\" is not one of"),
        (
            #"{"device": []}"#,
            #"unknown key "device" at the top level (did you mean "devices"?); the keys there are bind, isolate, backend, devices"#
        ),
        (#"{"devices": [{"adress": "03:00.0"}]}"#, #"unknown key "adress" in devices[0] (did you mean "address"?)"#),
        (#"{"devices": [], "bind": true}"#, #""devices" is empty"#),
        (#"{"bind": "yes", "devices": [{"address": "03:00.0"}]}"#, "at .bind: expected true or false"),
        (#"{"devices": [{"driver": "edu"}]}"#, #"at .devices[0]: "address" is required"#),
        ("{\n  \"devices\": [\n    {\"address\": \"03:00.0\"},\n  ]\n}", "line 4, column 3: expected a value"),
        ("{\"devices\": [{\"address\": \"03:00.0\"}]} x", "line 1, column 39: expected the end of the file"),
    ])
    func refusesBadFilesNamingWhatIsWrong(_ text: String, _ complaint: String) throws {
        let path = try write(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: DaemonError.self) { try ConfigurationFile.load(path) }
        #expect(error?.description.contains("the configuration \(path) is not usable") == true)
        #expect(error?.description.contains(complaint) == true, "\(String(describing: error))")
    }

    @Test func devicesOfOneGroupOrNamedTogetherShareAContext() {
        let a = pciAddress("0000:01:00.0"), b = pciAddress("0000:01:00.1"), c = pciAddress("0000:02:00.0")
        let d = pciAddress("0000:03:00.0"), e = pciAddress("0000:04:00.0")
        let groups = [a: 7, b: 7, c: 8, d: 9]
        let plan = IOMMUContextPlan(
            [.init(address: a), .init(address: c, context: "x"), .init(address: b), .init(address: d, context: "x"), .init(address: e)]
        ) { groups[$0] }
        #expect(plan.contexts.map(\.name) == ["group 7", "x", "device 0000:04:00.0"])
        #expect(plan.contexts.map { $0.devices.map(\.address) } == [[a, b], [c, d], [e]])
    }

    /// What a worker process reads: its context's devices, each naming the context, and the backend.
    @Test func aWorkersConfigurationReadsBackAsWritten() throws {
        let devices: [DaemonConfiguration.Device] = [
            .init(address: pciAddress("0000:01:01.0"), driver: "edu", context: "group 5"),
            .init(address: pciAddress("0000:01:02.0"), context: "group 5"),
        ]
        let data = try JSONEncoder().encode(ConfigurationFile(devices: devices, backend: .legacy))
        let file = try ConfigurationFile.parse(data, path: "worker.json")
        #expect(try file.parsedDevices(path: "worker.json") == devices)
        #expect(file.backend == "legacy" && file.bind == nil && file.isolate == nil)
        #expect(IOMMUContextPlan(devices) { _ in 5 }.contexts.map(\.name) == ["group 5"])
    }
}
