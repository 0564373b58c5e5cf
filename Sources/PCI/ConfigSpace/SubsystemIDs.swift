/// A subsystem vendor ID and subsystem ID pair.
public struct SubsystemIDs: Hashable, Sendable, Encodable {
    public let vendorID: UInt16
    public let deviceID: UInt16
}
