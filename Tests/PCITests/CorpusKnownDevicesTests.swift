import Testing
@testable import PCI

/// Specific devices of the corpus whose facts the README states.
@Suite(.enabled(if: Corpus.isPresent, Corpus.absentNote))
struct CorpusKnownDevicesTests {
    @Test func theIntelDSAHasTheScalableIOVDVSECWithIMSSupported() throws {
        let device = try #require(try Corpus.dump("pri-pasid").devices.first)
        let config = device.config
        #expect(try config.vendorID == 0x8086 && config.deviceID == 0x0b25)
        let caps = config.capabilities
        let msix = try MSIXCapability(config, at: try #require(caps.first(.msix)).offset)
        #expect(msix.tableSize == 9 && msix.table == .init(bar: 0, offset: 0x2000))
        #expect(msix.pendingBitArray == .init(bar: 0, offset: 0x3000))
        let pasid = try PASIDCapability(config, at: try #require(caps.first(.processAddressSpaceID)).offset)
        #expect(pasid.maxPASIDWidth == 20 && pasid.isEnabled)
        let siov = try #require(try ScalableIOVCapability.find(in: config, capabilities: caps))
        #expect(siov.dvsec.offset == 0x200)
        #expect(siov.isIMSSupported)
        #expect(try config.uint32(at: 0x200 + 0x14) & 1 == 1)
    }

    @Test func theCardBusBridgeCapabilityLibpciMissesIsFound() throws {
        let dump = try Corpus.dump("tree-fujitsu-p8010")
        let bridge = try #require(dump.devices.first { $0.address.description == "0000:1c:03.0" })
        #expect(try bridge.config.headerType.layout == .cardBusBridge)
        #expect(bridge.config.capabilities.standard == [Capability(offset: 0xa0, id: .powerManagement)])
        #expect(try PowerManagementCapability(bridge.config, at: 0xa0).version == 2)
        let libpci = try Corpus.text("tree-fujitsu-p8010.caps.txt")
        #expect(libpci.contains("0000:1c:03.0 1217:7136 class=0607 hdr=02 cfg=256\n0000:1c:03.2"))
    }

    @Test func theDeliberatelyBrokenDumpHasNoExtendedCapabilities() throws {
        let device = try #require(try Corpus.dump("broken-ecaps").devices.first)
        // Its bytes at 0x100 repeat the header; without a PCI Express capability they are not a chain.
        #expect(try device.config.uint32(at: 0x100) == device.config.uint32(at: 0))
        let caps = device.config.capabilities
        #expect(caps.standard.isEmpty && caps.extended.isEmpty && caps.problems.isEmpty)
    }

    @Test func a256ByteDumpHasNoExtendedSpace() throws {
        let device = try #require(try Corpus.dump("cap-dpc").devices.first)
        #expect(device.config.size == 256)
        #expect(device.config.capabilities.first(.pciExpress) != nil)
        #expect(device.config.capabilities.extended.isEmpty)
        #expect(throws: ConfigSpaceError.unavailable(offset: 0x100, width: 4)) { try device.config.uint32(at: 0x100) }
    }

    @Test func noCorpusDeviceHasAMalformedChain() throws {
        for name in Corpus.dumpNames {
            for device in try Corpus.dump(name).devices {
                #expect(device.config.capabilities.problems.isEmpty, "\(name) \(device.address)")
            }
        }
    }
}
