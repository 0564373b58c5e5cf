import Foundation
import PCI
import Testing
@testable import VFIOHost
import VFIOKit

@Suite struct BindingStateStoreTests {
    @Test func recordsSurviveARoundTripAsJSON() throws {
        let host = try FakeHost()
        let address = try PCIAddress(parsing: "0000:03:00.0")
        try host.store.update { $0[address] = BindingRecord(originalDriver: try! DriverName("nvme"), boundTo: .vfioPCI) }
        let text = host.read("run/vfiokit/bindings.json")
        #expect(text.contains("\"0000:03:00.0\""))
        #expect(text.contains("\"originalDriver\" : \"nvme\""))
        #expect(try host.store.load() == [address: BindingRecord(originalDriver: try DriverName("nvme"), boundTo: .vfioPCI)])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: host.stateDirectory).sorted()
        #expect(leftovers == ["bindings.json", "bindings.lock"], "the atomic write leaves no temporary file")
    }

    @Test func missingFileMeansNoRecords() throws {
        #expect(try FakeHost().store.load().isEmpty)
    }

    @Test func corruptFileIsReportedWithWhatToDo() throws {
        let host = try FakeHost()
        host.mkdir("run/vfiokit")
        for bad in [
            "{not json", #"{"version":1,"devices":{"../../etc":{"boundTo":"vfio-pci"}}}"#,
            #"{"version":1,"devices":{"0000:03:00.0":{"originalDriver":"../../bin/sh","boundTo":"vfio-pci"}}}"#,
        ] {
            host.write("run/vfiokit/bindings.json", bad)
            #expect {
                try host.store.load()
            } throws: { error in
                guard case .corrupt = error as? BindingStateError else { return false }
                return "\(error)".contains("remove it")
            }
        }
    }

    @Test func unwritableDirectoryIsReported() throws {
        let store = BindingStateStore(directory: "/proc/vfiokit-cannot-exist")
        #expect {
            try store.update { _ in }
        } throws: { error in
            guard case .unwritable = error as? BindingStateError else { return false }
            return "\(error)".contains("VFIOKIT_STATE_DIR")
        }
    }
}
