import Testing
@testable import PCI

@Suite struct VirtualizationCapabilityTests {
    static func pcieDevice() -> ConfigBuilder {
        var builder = ConfigBuilder(size: 4096)
        builder.addPCIExpress()
        return builder
    }

    @Test func decodesSRIOV() throws {
        var builder = Self.pcieDevice()
        var body = [UInt8](repeating: 0, count: 0x3c)
        body.replaceSubrange(0..<4, with: le32(0))  // capabilities
        body.replaceSubrange(4..<6, with: le16(1 | 1 << 3 | 1 << 4))  // control: VF enable, MSE, ARI
        body.replaceSubrange(8..<10, with: le16(6))  // initial
        body.replaceSubrange(10..<12, with: le16(8))  // total
        body.replaceSubrange(12..<14, with: le16(4))  // num
        body[14] = 2  // function dependency link
        body.replaceSubrange(16..<18, with: le16(384))  // first VF offset
        body.replaceSubrange(18..<20, with: le16(2))  // stride
        body.replaceSubrange(22..<24, with: le16(0x10ca))  // VF device ID
        body.replaceSubrange(24..<28, with: le32(0x553))
        body.replaceSubrange(28..<32, with: le32(1))
        builder.addExtendedCapability(0x0010, at: 0x100, body: body)
        let sriov = try SRIOVCapability(builder.config, at: 0x100)
        #expect(sriov.version == 1)
        #expect(sriov.isVFEnabled && sriov.isVFMemorySpaceEnabled && sriov.isARICapableHierarchy)
        #expect(sriov.initialVFs == 6 && sriov.totalVFs == 8 && sriov.numVFs == 4)
        #expect(sriov.functionDependencyLink == 2)
        #expect(sriov.firstVFOffset == 384 && sriov.vfStride == 2)
        #expect(sriov.vfDeviceID == 0x10ca)
        #expect(sriov.supportedPageSizes == 0x553 && sriov.systemPageSize == 1)
        #expect(sriov.controlOffset == 0x108 && sriov.numVFsOffset == 0x110)

        let pf = try PCIAddress(parsing: "0000:3b:00.0")
        #expect(sriov.virtualFunctionAddress(1, physicalFunction: pf)?.description == "0000:3c:10.0")
        #expect(sriov.virtualFunctionAddress(4, physicalFunction: pf)?.description == "0000:3c:10.6")
        #expect(sriov.virtualFunctionAddress(0, physicalFunction: pf) == nil)
        #expect(sriov.virtualFunctionAddress(5, physicalFunction: pf) == nil)
        #expect(sriov.virtualFunctionAddress(4, physicalFunction: try PCIAddress(parsing: "ff:1f.0")) == nil)
    }

    @Test func decodesPASID() throws {
        var builder = Self.pcieDevice()
        builder.addExtendedCapability(0x001b, at: 0x100, body: le16(0x1404) + le16(0x0005))
        let pasid = try PASIDCapability(builder.config, at: 0x100)
        #expect(!pasid.supportsExecutePermission && pasid.supportsPrivilegedMode)
        #expect(pasid.maxPASIDWidth == 20)
        #expect(pasid.isEnabled && !pasid.isExecutePermissionEnabled && pasid.isPrivilegedModeEnabled)
    }

    @Test func decodesATS() throws {
        var builder = Self.pcieDevice()
        builder.addExtendedCapability(0x000f, at: 0x100, body: le16(0x0060 | 0x11) + le16(0x8003))
        let ats = try ATSCapability(builder.config, at: 0x100)
        #expect(ats.invalidateQueueDepth == 0x11)
        #expect(ats.requiresPageAlignedRequests && ats.supportsGlobalInvalidate)
        #expect(ats.isEnabled && ats.smallestTranslationUnit == 3)
    }

    @Test func extendedDecodersCheckTheID() throws {
        var builder = Self.pcieDevice()
        builder.addExtendedCapability(0x000f, at: 0x100, body: le16(0) + le16(0))
        let config = try builder.config
        #expect(
            throws: ConfigSpaceError.unexpectedCapability(
                offset: 0x100, expected: "Process Address Space ID (0x001b)", found: "Address Translation Services (0x000f)")
        ) { try PASIDCapability(config, at: 0x100) }
        #expect(throws: ConfigSpaceError.self) { try SRIOVCapability(config, at: 0x100) }
        #expect(throws: ConfigSpaceError.self) { try DVSECCapability(config, at: 0x100) }
    }

    /// A Scalable IOV DVSEC of `length` bytes with the IMS bit as given.
    static func siov(length: UInt32 = 0x18, vendor: UInt16 = 0x8086, id: UInt16 = 5, ims: Bool) -> [UInt8] {
        le32(UInt32(vendor) | length << 20) + le16(id) + [0x00, 0x01] + le32(0x1) + le32(0x1) + le32(ims ? 1 : 0)
    }

    @Test func decodesTheScalableIOVDVSECAndItsIMSBit() throws {
        var builder = Self.pcieDevice()
        builder.addExtendedCapability(0x0023, at: 0x100, body: Self.siov(vendor: 0x1e98, id: 0, ims: true))
        builder.addExtendedCapability(0x0023, at: 0x200, body: Self.siov(ims: true))
        let config = try builder.config
        let dvsec = try DVSECCapability(config, at: 0x200)
        #expect(dvsec.vendorID == 0x8086 && dvsec.dvsecID == 5 && dvsec.revision == 0 && dvsec.length == 24)
        let siov = try ScalableIOVCapability(config, dvsec: dvsec)
        #expect(siov.isIMSSupported)
        #expect(siov.isHomogeneous)
        #expect(siov.supportedPageSizes == 1 && siov.systemPageSize == 1)
        #expect(try ScalableIOVCapability.find(in: config, capabilities: config.capabilities) == siov)

        #expect(throws: ConfigSpaceError.self) { try ScalableIOVCapability(config, dvsec: DVSECCapability(config, at: 0x100)) }
    }

    @Test func theIMSBitCanBeClear() throws {
        var builder = Self.pcieDevice()
        builder.addExtendedCapability(0x0023, at: 0x100, body: Self.siov(ims: false))
        let config = try builder.config
        #expect(try ScalableIOVCapability.find(in: config, capabilities: config.capabilities)?.isIMSSupported == false)
    }

    @Test func aScalableIOVDVSECTooShortForItsFieldsIsMalformed() throws {
        var builder = Self.pcieDevice()
        builder.addExtendedCapability(0x0023, at: 0x100, body: Self.siov(length: 0x10, ims: true))
        let config = try builder.config
        #expect(
            throws: ConfigSpaceError.malformed(
                offset: 0x104, reason: "the Scalable IOV DVSEC is 16 bytes long, shorter than its 24")
        ) { try ScalableIOVCapability.find(in: config, capabilities: config.capabilities) }
    }

    @Test func noScalableIOVDVSECIsNil() throws {
        let config = try Self.pcieDevice().config
        #expect(try ScalableIOVCapability.find(in: config, capabilities: config.capabilities) == nil)
    }

    @Test func decodedCapabilityPicksTheDecoderByID() throws {
        var builder = Self.pcieDevice()
        builder.addCapability(0x09, at: 0x50)
        builder.addExtendedCapability(0x0023, at: 0x100, body: Self.siov(ims: true))
        builder.addExtendedCapability(0x0001, at: 0x140)
        let config = try builder.config
        let caps = config.capabilities
        #expect(try DecodedCapability(caps.standard[1], in: config) == nil)
        guard case .scalableIOV(let siov)? = try DecodedCapability(caps.extended[0], in: config) else {
            Issue.record("the SIOV DVSEC was not decoded as Scalable IOV")
            return
        }
        #expect(siov.isIMSSupported)
        #expect(try DecodedCapability(caps.extended[1], in: config) == nil)
        guard case .pciExpress? = try DecodedCapability(caps.standard[0], in: config) else {
            Issue.record("the PCI Express capability was not decoded")
            return
        }
    }
}
