import Foundation
import Testing
@testable import PCI

/// Every decoded capability of every corpus device, compared field by field with what lspci
/// 3.9 printed for it in `NAME.lspci-n.txt`.
@Suite(.enabled(if: Corpus.isPresent, Corpus.absentNote))
struct CorpusDecoderConformanceTests {
    /// How many capabilities of each kind a dump's comparison checked.
    typealias Tally = [String: Int]

    @Test(arguments: Corpus.dumpNames)
    func decodedFieldsMatchLspci(_ name: String) throws {
        let dump = try Corpus.dump(name)
        let lspci = try LSPCIText(Corpus.text(name + ".lspci-n.txt"))
        _ = try Self.compare(dump, with: lspci, in: name)
    }

    /// The corpus holds MSI-X in 14 files: each of its MSI-X lines must have been checked.
    @Test func everyMSIXCapabilityInTheCorpusIsChecked() throws {
        var tally: Tally = [:]
        var msixLines = 0
        var filesWithMSIX = 0
        for name in Corpus.dumpNames {
            let text = try Corpus.text(name + ".lspci-n.txt")
            let lines = text.split(separator: "\n").filter { $0.contains("] MSI-X: ") }.count
            msixLines += lines
            filesWithMSIX += lines > 0 ? 1 : 0
            tally.merge(try Self.compare(Corpus.dump(name), with: LSPCIText(text), in: name), uniquingKeysWith: +)
        }
        #expect(filesWithMSIX == 14)
        #expect(tally["msix"] == msixLines)
        for kind in [
            "msi", "msix", "pciExpress", "powerManagement", "singleRootIOV", "processAddressSpaceID",
            "addressTranslationServices", "designatedVendorSpecific", "scalableIOV",
        ] {
            #expect(tally[kind, default: 0] > 0, "no \(kind) capability was compared")
        }
    }

    static func compare(_ dump: PCIDump, with lspci: LSPCIText, in name: String) throws -> Tally {
        var tally: Tally = [:]
        for device in dump.devices {
            let config = device.config
            let caps = config.capabilities
            let entries: [(offset: Int, decode: () throws -> DecodedCapability?)] =
                caps.standard.map { cap in (cap.offset, { try DecodedCapability(cap, in: config) }) }
                + caps.extended.map { cap in (cap.offset, { try DecodedCapability(cap, in: config) }) }
            for entry in entries {
                let place = "\(name) \(device.address) cap 0x\(String(entry.offset, radix: 16))"
                guard let decoded = try entry.decode() else { continue }
                let printed = try #require(lspci.capability(of: device.address, at: entry.offset), "\(place): not in lspci's text")
                let key = compare(decoded, printed.text, printed.body, place)
                tally[key, default: 0] += 1
            }
        }
        return tally
    }

    /// Compares one decoded capability with lspci's line and the lines under it; returns its kind.
    static func compare(_ decoded: DecodedCapability, _ text: Substring, _ body: [Substring], _ place: String) -> String {
        func line(_ prefix: String) -> Substring? { body.first { $0.hasPrefix(prefix) } }
        func hex(_ value: Substring?) -> Int? { value.flatMap { Int($0, radix: 16) } }
        func dec(_ value: Substring?) -> Int? { value.flatMap { Int($0) } }
        let comment = Comment(rawValue: "\(place): lspci says \"\(text)\" \(body)")
        /// Each flag lspci printed on `printed` (`Name+` or `Name-`) is what was decoded.
        func expectFlags(
            _ printed: Substring?, _ flags: KeyValuePairs<String, Bool>, sourceLocation: SourceLocation = #_sourceLocation
        ) {
            for (name, decoded) in flags { #expect(printed?.flag(name) == decoded, comment, sourceLocation: sourceLocation) }
        }

        switch decoded {
        case let .msix(msix):
            #expect(text.hasPrefix("MSI-X: "), comment)
            expectFlags(text, ["Enable": msix.isEnabled, "Masked": msix.isFunctionMasked])
            #expect(dec(text.value(after: "Count=")) == msix.tableSize, comment)
            let table = line("Vector table: ")
            #expect(dec(table?.value(after: "BAR=")) == msix.table.bar, comment)
            #expect(hex(table?.value(after: "offset=")) == Int(msix.table.offset), comment)
            let pba = line("PBA: ")
            #expect(dec(pba?.value(after: "BAR=")) == msix.pendingBitArray.bar, comment)
            #expect(hex(pba?.value(after: "offset=")) == Int(msix.pendingBitArray.offset), comment)
            return "msix"
        case let .msi(msi):
            #expect(text.hasPrefix("MSI: "), comment)
            #expect(text.flag("Enable") == msi.isEnabled, comment)
            #expect(text.value(after: "Count=") == "\(msi.multipleMessageEnable)/\(msi.multipleMessageCapable)", comment)
            expectFlags(text, ["Maskable": msi.hasPerVectorMasking, "64bit": msi.is64Bit])
            return "msi"
        case let .pciExpress(pcie):
            #expect(text.hasPrefix("Express (v\(pcie.version)) \(pcie.deviceType)"), comment)
            if let slot = text.flag("Slot") { #expect(slot == pcie.isSlotImplemented, comment) }
            #expect(hex(text.value(after: ", MSI ")) == pcie.interruptMessageNumber, comment)
            if let capabilities = line("LnkCap:"), let status = line("LnkSta:") {
                let link = pcie.link
                #expect(dec(capabilities.value(after: "Port #")) == link?.portNumber, comment)
                #expect(capabilities.value(after: "Speed ").map(String.init) == link?.maxSpeed.description, comment)
                #expect(dec(capabilities.value(after: "Width x")) == link?.maxWidth, comment)
                #expect(status.value(after: "Speed ").map(String.init) == link?.currentSpeed.description, comment)
                #expect(dec(status.value(after: "Width x")) == link?.negotiatedWidth, comment)
            } else {
                #expect(pcie.link == nil, comment)
            }
            return "pciExpress"
        case let .powerManagement(pm):
            #expect(text == "Power Management version \(pm.version)", comment)
            if let flags = line("Flags: ") {
                #expect(flags.contains(" D1\(pm.supportsD1 ? "+" : "-")"), comment)
                #expect(flags.contains(" D2\(pm.supportsD2 ? "+" : "-")"), comment)
                let states = ["D0", "D1", "D2", "D3hot", "D3cold"].enumerated()
                    .map { "\($0.element)\(pm.pmeSupport >> $0.offset & 1 == 1 ? "+" : "-")" }
                #expect(flags.contains("PME(\(states.joined(separator: ",")))"), comment)
            }
            if let status = line("Status: ") {
                let state = ["D0", "D1", "D2", "D3"][[.d0, .d1, .d2, .d3hot].firstIndex(of: pm.powerState)!]
                #expect(status.hasPrefix("Status: \(state) "), comment)
                expectFlags(status, ["NoSoftRst": pm.noSoftReset, "PME-Enable": pm.isPMEEnabled])
                #expect(status.hasSuffix("PME\(pm.isPMEStatusSet ? "+" : "-")"), comment)
            }
            return "powerManagement"
        case let .singleRootIOV(sriov):
            #expect(text.hasPrefix("Single Root I/O Virtualization (SR-IOV)"), comment)
            expectFlags(
                line("IOVCtl:"),
                ["Enable": sriov.isVFEnabled, "MSE": sriov.isVFMemorySpaceEnabled, "ARIHierarchy": sriov.isARICapableHierarchy])
            let counts = line("Initial VFs: ")
            #expect(dec(counts?.value(after: "Initial VFs: ")) == sriov.initialVFs, comment)
            #expect(dec(counts?.value(after: "Total VFs: ")) == sriov.totalVFs, comment)
            #expect(dec(counts?.value(after: "Number of VFs: ")) == sriov.numVFs, comment)
            #expect(hex(counts?.value(after: "Function Dependency Link: ")) == sriov.functionDependencyLink, comment)
            let routing = line("VF offset: ")
            #expect(dec(routing?.value(after: "VF offset: ")) == sriov.firstVFOffset, comment)
            #expect(dec(routing?.value(after: "stride: ")) == sriov.vfStride, comment)
            #expect(hex(routing?.value(after: "Device ID: ")) == Int(sriov.vfDeviceID), comment)
            let pages = line("Supported Page Size: ")
            #expect(hex(pages?.value(after: "Supported Page Size: ")) == Int(sriov.supportedPageSizes), comment)
            #expect(hex(pages?.value(after: "System Page Size: ")) == Int(sriov.systemPageSize), comment)
            return "singleRootIOV"
        case let .processAddressSpaceID(pasid):
            #expect(text.hasPrefix("Process Address Space ID (PASID)"), comment)
            let capabilities = line("PASIDCap: ")
            expectFlags(capabilities, ["Exec": pasid.supportsExecutePermission, "Priv": pasid.supportsPrivilegedMode])
            #expect(hex(capabilities?.value(after: "Max PASID Width: ")) == pasid.maxPASIDWidth, comment)
            expectFlags(
                line("PASIDCtl: "),
                ["Enable": pasid.isEnabled, "Exec": pasid.isExecutePermissionEnabled, "Priv": pasid.isPrivilegedModeEnabled])
            return "processAddressSpaceID"
        case let .addressTranslationServices(ats):
            #expect(text.hasPrefix("Address Translation Service (ATS)"), comment)
            #expect(hex(line("ATSCap:")?.value(after: "Invalidate Queue Depth: ")) == ats.invalidateQueueDepth, comment)
            let control = line("ATSCtl:")
            #expect(control?.flag("Enable") == ats.isEnabled, comment)
            #expect(hex(control?.value(after: "Smallest Translation Unit: ")) == ats.smallestTranslationUnit, comment)
            return "addressTranslationServices"
        case let .designatedVendorSpecific(dvsec):
            compareDVSEC(dvsec, text, comment)
            return "designatedVendorSpecific"
        case let .scalableIOV(siov):
            compareDVSEC(siov.dvsec, text, comment)
            return "scalableIOV"
        }
    }

    static func compareDVSEC(_ dvsec: DVSECCapability, _ text: Substring, _ comment: Comment) {
        #expect(text.hasPrefix("Designated Vendor-Specific: "), comment)
        #expect(text.value(after: "Vendor=").flatMap { Int($0, radix: 16) } == Int(dvsec.vendorID), comment)
        #expect(text.value(after: "ID=").flatMap { Int($0, radix: 16) } == Int(dvsec.dvsecID), comment)
        #expect(text.value(after: "Rev=").flatMap { Int($0) } == dvsec.revision, comment)
        #expect(text.value(after: "Len=").flatMap { Int($0.prefix { $0 != ":" }) } == dvsec.length, comment)
    }
}
