import Foundation
import Testing

/// The rule files in udev-rules/: parsed and matched by ``UdevRuleMatcher`` always, and read
/// by the real udevadm where the tests may make a private mount namespace.
@Suite struct UdevRulesTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../udev-rules").standardized.path
    static let files = ["70-vfiokit.rules", "71-vfiokit-bind.rules"]

    func rules(_ name: String) throws -> UdevRuleMatcher {
        try UdevRuleMatcher(parsing: String(contentsOfFile: "\(Self.directory)/\(name)", encoding: .utf8))
    }

    typealias Device = UdevRuleMatcher.Device
    let vfioAccess = UdevRuleMatcher.Outcome(group: "vfio", mode: "0660")

    @Test func everyVFIONodeGoesToTheVFIOGroupOnly() throws {
        let rules = try rules("70-vfiokit.rules")
        for device in [
            Device(action: "add", subsystem: "misc", kernel: "vfio"),  // /dev/vfio/vfio
            Device(action: "add", subsystem: "vfio", kernel: "12"),  // /dev/vfio/12
            Device(action: "add", subsystem: "vfio", kernel: "noiommu-0"),  // /dev/vfio/noiommu-0
            Device(action: "add", subsystem: "vfio-dev", kernel: "vfio0"),  // /dev/vfio/devices/vfio0
            Device(action: "add", subsystem: "misc", kernel: "iommu"),  // /dev/iommu
        ] {
            #expect(rules.apply(to: device) == vfioAccess, "\(device.subsystem)/\(device.kernel)")
        }
    }

    @Test func otherDevicesAreLeftAlone() throws {
        let rules = try rules("70-vfiokit.rules")
        for device in [
            Device(action: "add", subsystem: "misc", kernel: "fuse"),
            Device(action: "add", subsystem: "block", kernel: "vda"),
            Device(action: "add", subsystem: "uio", kernel: "uio0"),
            Device(action: "add", subsystem: "pci", kernel: "0000:00:02.0"),
        ] {
            #expect(rules.apply(to: device) == UdevRuleMatcher.Outcome(), "\(device.subsystem)/\(device.kernel)")
        }
    }

    @Test func bindRuleSetsTheOverrideForListedIDsOnAdd() throws {
        let rules = try rules("71-vfiokit-bind.rules")
        let edu = Device(action: "add", subsystem: "pci", kernel: "0000:00:04.0", attributes: ["vendor": "0x1234", "device": "0x11e8"])
        let outcome = rules.apply(to: edu)
        #expect(outcome.attributeWrites == ["driver_override": "vfio-pci"])
        #expect(outcome.run == ["{builtin}kmod load vfio-pci"])

        var change = edu
        change.action = "change"
        var other = edu
        other.attributes["device"] = "0x11e9"
        var notPCI = edu
        notPCI.subsystem = "misc"
        for device in [change, other, notPCI] {
            #expect(rules.apply(to: device) == UdevRuleMatcher.Outcome())
        }
    }

    @Test func matcherRejectsWhatUdevWouldOnlyLog() {
        for bad in [
            #"SUBSYSTEM=="vfio" GROUP="vfio""#,  // missing comma
            #"SUBSYSTM=="vfio", GROUP="vfio""#,  // unknown key
            #"SUBSYSTEM="vfio""#,  // assignment to a match key
            #"GROUP=="vfio""#,  // match on an assignment key
            #"SUBSYSTEM==vfio"#,  // unquoted
            #"ATTR=="x""#,  // ATTR without a name
        ] {
            #expect(throws: UdevRuleMatcher.ParseError.self, "\(bad)") { try UdevRuleMatcher(parsing: bad) }
        }
    }

    /// udevadm 252 reads only its own rule directories, so they are replaced in a private
    /// mount namespace, as are /dev and /run (udevadm test creates links and database files
    /// there). The device used is a real misc device the rules cannot match, because udevadm
    /// test writes matching rules' ATTR assignments for real.
    @Test(.enabled(if: canRunUdevadm, "needs root, unshare(1) and udevadm to check the rules with udevadm"))
    func udevadmReadsTheRulesWithoutComplaint() throws {
        let misc = try FileManager.default.contentsOfDirectory(atPath: "/sys/class/misc").sorted()
        let device = try #require(misc.first { !["vfio", "iommu"].contains($0) }, "a misc device to run the rules on")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("udev-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let group = try String(contentsOfFile: "/etc/group", encoding: .utf8)
        try (group + (group.contains("\nvfio:") ? "" : "vfio:x:64999:\n")).write(
            toFile: "\(scratch)/group", atomically: true, encoding: .utf8)
        var script = "set -e\n"
        for dir in ["/etc/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d", "/dev", "/run"] {
            script += "if [ -d \(dir) ] && [ ! -L \(dir) ]; then mount -t tmpfs none \(dir); fi\n"
        }
        script += "mkdir -p /etc/udev/rules.d\n"
        for file in Self.files { script += "cp '\(Self.directory)/\(file)' /etc/udev/rules.d/\n" }
        script += "mount --bind '\(scratch)/group' /etc/group\n"
        script += "udevadm test --action=add /sys/class/misc/\(device) 2>&1\n"

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--propagation", "private", "/bin/sh", "-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        for file in Self.files {
            #expect(output.contains("Reading rules file: /etc/udev/rules.d/\(file)"), "\(output)")
            let complaints = output.split(separator: "\n").filter { $0.contains("\(file):") }
            #expect(complaints.isEmpty, "udevadm complained: \(complaints)")
        }
    }
}

let canRunUdevadm =
    getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")
    && (FileManager.default.isExecutableFile(atPath: "/usr/bin/udevadm") || FileManager.default.isExecutableFile(atPath: "/bin/udevadm"))
    && FileManager.default.fileExists(atPath: "/sys/class/misc")
