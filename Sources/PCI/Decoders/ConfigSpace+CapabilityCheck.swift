extension ConfigSpace {
    /// Throws unless the standard capability at `offset` has `id`, so a decoder never reads a
    /// structure it does not understand.
    func expectCapability(_ id: CapabilityID, at offset: Int) throws(ConfigSpaceError) {
        let found = CapabilityID(rawValue: try uint8(at: offset))
        guard found == id else {
            throw .unexpectedCapability(offset: offset, expected: id.description, found: found.description)
        }
    }

    /// Throws unless the extended capability at `offset` has `id`; returns its version.
    func expectExtendedCapability(_ id: ExtendedCapabilityID, at offset: Int) throws(ConfigSpaceError) -> UInt8 {
        let header = try uint32(at: offset)
        let found = ExtendedCapabilityID(rawValue: UInt16(header & 0xffff))
        guard found == id else {
            throw .unexpectedCapability(offset: offset, expected: id.description, found: found.description)
        }
        return UInt8(header >> 16 & 0xf)
    }
}
