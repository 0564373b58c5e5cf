/// What the host is using a PCI device for, that unbinding its driver would break.
public struct DeviceUsage: Equatable, Sendable, Codable {
    /// A filesystem mounted from a block device below the PCI device (or stacked on one,
    /// such as dm or md).
    public struct MountedFilesystem: Equatable, Sendable, Codable {
        /// The block device's kernel name: `nvme0n1p2`, `dm-0`.
        public let blockDevice: String
        public let deviceNumber: String
        public let mountPoint: String
    }

    public var mounts: [MountedFilesystem] = []
    /// Block devices (kernel names) in use as swap.
    public var swaps: [String] = []
    /// Network interfaces below the device that are up.
    public var upInterfaces: [String] = []

    public var isInUse: Bool { !mounts.isEmpty || !swaps.isEmpty || !upInterfaces.isEmpty }

    /// "/ on vda, interface eth0 up"
    public var summary: String {
        var parts = mounts.map { "\($0.mountPoint) mounted from \($0.blockDevice)" }
        parts += swaps.map { "swap on \($0)" }
        parts += upInterfaces.map { "interface \($0) is up" }
        return parts.joined(separator: ", ")
    }
}
