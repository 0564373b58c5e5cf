import Foundation
import Testing
import VFIODaemon
import VFIODrivers
import VFIOMock
#if canImport(Glibc)
import Glibc
#endif

/// `exports`: the specification's form, the config key, and a hosted NVMe device served over NBD.
@Suite(.serialized) struct ExportTests {
    @Test func theConfigKeyListsEachDevicesExports() throws {
        let json =
            #"{"devices": [{"address": "0000:00:05.0", "driver": "nvme", "exports": ["nbd:/run/x.sock", "nbd:127.0.0.1:10809,namespace=2,read-only", "ublk"]}]}"#
        let file = try ConfigurationFile.parse(Data(json.utf8), path: "inline.json")
        let device = try #require(try file.parsedDevices(path: "inline.json").first)
        #expect(
            device.exports == [
                ExportSpecification(kind: .nbd, endpoint: .unixSocket("/run/x.sock")),
                ExportSpecification(kind: .nbd, namespace: 2, endpoint: .loopback(host: "127.0.0.1", port: 10809), readOnly: true),
                ExportSpecification(kind: .ublk),
            ])
        // Written back the same way (the worker's configuration file).
        #expect(
            ConfigurationFile(devices: [device], backend: .auto).devices[0].exports == [
                "nbd:/run/x.sock", "nbd:127.0.0.1:10809,namespace=2,read-only", "ublk",
            ])
    }

    @Test(arguments: [
        ("nfs:/x", "\"nfs\" is not an export protocol"),
        ("nbd:0.0.0.0:10809", "loopback only"),
        ("nbd:127.0.0.1:http", "\"http\" is not a TCP port"),
        ("nbd:relative.sock", "neither an absolute socket path nor 127.0.0.1:PORT"),
        ("ublk:/dev/ublkb0", "ublk takes no socket"),
        ("nbd,namespace=0", "\"0\" is not a namespace ID"),
        ("nbd,ns=x", "\"x\" is not a namespace ID"),
        ("nbd,fast", "unknown option \"fast\""),
    ])
    func aBadSpecificationIsRefusedNamingWhatIsWrong(spec: String, reason: String) throws {
        let error = #expect(throws: ExportSpecificationError.self) { try ExportSpecification(parsing: spec) }
        #expect(error?.description.contains(reason) == true, "\(error?.description ?? "no error")")
        #expect(error?.description.contains("export \"\(spec)\"") == true)
        // In a config file the error names the file and the device too.
        let json = #"{"devices": [{"address": "0000:00:05.0", "exports": ["\#(spec)"]}]}"#
        let fileError = #expect(throws: DaemonError.self) {
            try ConfigurationFile.parse(Data(json.utf8), path: "inline.json").parsedDevices(path: "inline.json")
        }
        #expect(fileError?.description.contains("inline.json") == true && fileError?.description.contains("device 0000:00:05.0") == true)
        #expect(fileError?.description.contains(reason) == true)
    }

    @Test func twoExportsAtOnePlaceAreRefused() throws {
        let same = [try ExportSpecification(parsing: "nbd:/tmp/a.sock"), try ExportSpecification(parsing: "nbd:/tmp/a.sock,namespace=2")]
        #expect(throws: ExportSpecificationError.self) { try ExportSpecification.checkDistinct(same) }
        let twice = [try ExportSpecification(parsing: "nbd"), try ExportSpecification(parsing: "nbd,read-only")]
        #expect(throws: ExportSpecificationError.self) { try ExportSpecification.checkDistinct(twice) }
        try ExportSpecification.checkDistinct([
            try ExportSpecification(parsing: "nbd"), try ExportSpecification(parsing: "nbd,namespace=2"), .init(kind: .ublk),
        ])
    }

    @Test func twoExportsOfOneDeviceEachServeOnTheirOwnQueuePair() throws {
        let machine = try DaemonMachine(edu: [])
        defer { machine.removeStateDirectory() }
        let controller = NVMeController(namespaces: [NVMeNamespace(blockCount: 4096)])
        defer { controller.stop() }
        try machine.kernel.plug(controller, at: second, driver: .vfioPCI)
        let host = try machine.host([
            .init(
                address: second, driver: "nvme",
                exports: [.init(kind: .nbd), .init(kind: .nbd, endpoint: .loopback(host: "127.0.0.1", port: 0), readOnly: true)])
        ])
        try host.start()
        defer { host.shutdown() }
        let exports = try #require(host.device(second)?.exports)
        try #require(exports.count == 2, "\(String(describing: host.device(second)))")
        #expect(exports[0].target == "nbd+unix:///?socket=\(machine.stateDirectory)/nbd-0000-00-05.0-ns1.sock")
        #expect(exports[1].target.hasPrefix("nbd://127.0.0.1:") && exports[1].readOnly)
        #expect(try nbdinfo(exports[0].target).contains("\"is_read_only\": false"))
        #expect(try nbdinfo(exports[1].target).contains("\"is_read_only\": true"))
        #expect(host.device(second)?.exports?.map { $0.detail.connections } == [1, 1])
    }

    @Test func anExportThatCannotStartFailsItsDeviceNamingTheExport() throws {
        let machine = try DaemonMachine(edu: [first])
        defer { machine.removeStateDirectory() }
        let controller = NVMeController(namespaces: [NVMeNamespace(blockCount: 4096)])
        defer { controller.stop() }
        try machine.kernel.plug(controller, at: second, driver: .vfioPCI)
        let host = try machine.host([
            .init(address: first, driver: "edu"),
            .init(
                address: second, driver: "nvme",
                exports: [try ExportSpecification(parsing: "nbd:/nonexistent-vfiokit-dir/x.sock"), .init(kind: .nbd, namespace: 7)]),
        ])
        try host.start()
        defer { host.shutdown() }
        #expect(host.device(first)?.state == "running")
        #expect(host.device(second)?.state == "failed")
        #expect(
            host.device(second)?.detail?.contains("export \"nbd:/nonexistent-vfiokit-dir/x.sock\"") == true,
            "\(String(describing: host.device(second)?.detail))")
        #expect(machine.kernel.dmaMappings(of: second).isEmpty, "the device was released")
    }

    @Test(.enabled(if: access("/dev/ublk-control", F_OK) != 0, "ublk_drv is loaded here: this checks the daemon without it"))
    func aUblkExportWithoutUblkDrvFailsItsDeviceNamingTheModule() throws {
        let machine = try DaemonMachine(edu: [first])
        defer { machine.removeStateDirectory() }
        let controller = NVMeController(namespaces: [NVMeNamespace(blockCount: 4096)])
        defer { controller.stop() }
        try machine.kernel.plug(controller, at: second, driver: .vfioPCI)
        let host = try machine.host([
            .init(address: first, driver: "edu"), .init(address: second, driver: "nvme", exports: [.init(kind: .ublk)]),
        ])
        try host.start()
        defer { host.shutdown() }
        #expect(host.device(first)?.state == "running")
        #expect(host.device(second)?.state == "failed")
        let detail = host.device(second)?.detail ?? ""
        #expect(detail.contains("export \"ublk\"") && detail.contains("modprobe ublk_drv"), "\(detail)")
    }

    @Test func aHostedNVMeDeviceIsServedOverNBDCountedAndStoppedBeforeTheDriver() throws {
        let machine = try DaemonMachine(edu: [first])
        defer { machine.removeStateDirectory() }
        let image = machine.stateDirectory + ".img"
        defer { unlink(image) }
        let controller = NVMeController(namespaces: [try NVMeNamespace(imageAt: image, createSize: 8 << 20)])
        defer { controller.stop() }
        try machine.kernel.plug(controller, at: second, driver: .vfioPCI)
        let socket = "/tmp/vfiokit-export-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
        let host = try machine.host([
            .init(address: first, driver: "edu"),
            .init(address: second, driver: "nvme", exports: [try ExportSpecification(parsing: "nbd:\(socket)")]),
        ])
        try host.start()
        let export = try #require(host.device(second)?.exports?.first, "\(String(describing: host.device(second)))")
        #expect(export.kind == "nbd" && export.namespace == 1 && export.target == "nbd+unix:///?socket=\(socket)")

        let info = try nbdinfo(export.target)
        #expect(info.contains("\"export-size\": \(8 << 20)"), "\(info)")
        let served = try #require(host.device(second)?.exports?.first?.detail)
        #expect(served.connections >= 1 && served.errors == 0)
        let report = host.status()
        #expect(report.text.contains("export nbd namespace 1: nbd+unix:///?socket=\(socket)"), "\(report.text)")

        host.shutdown()
        #expect(access(socket, F_OK) != 0, "the socket is removed when the export stops")
        // The figures stay as they stood.
        #expect(host.device(second)?.exports?.first?.detail.connections == served.connections)
        #expect(host.device(second)?.state == "stopped")
    }

    @Test func anExportOnADeviceWithoutTheNVMeDriverFailsThatDeviceSaying() throws {
        let machine = try DaemonMachine(edu: [first, second])
        defer { machine.removeStateDirectory() }
        let host = try machine.host([.init(address: first), .init(address: second, driver: "edu", exports: [.init(kind: .nbd)])])
        try host.start()
        defer { host.shutdown() }
        #expect(host.device(first)?.state == "running")
        #expect(host.device(second)?.state == "failed")
        #expect(host.device(second)?.detail?.contains("exports serve NVMe namespaces: give this device the nvme driver, not edu") == true)
    }

    /// `nbdinfo --json URI`'s output; throws when it fails.
    func nbdinfo(_ uri: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nbdinfo")
        process.arguments = ["--json", uri]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self)
    }
}
