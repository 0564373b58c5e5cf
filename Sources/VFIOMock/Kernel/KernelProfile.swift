extension MockKernel {
    /// The VFIO, iommufd and vfio-pci ABI of one Linux release, where releases answer the same
    /// call differently. Machine facts (IOVA ranges, page sizes, firmware) stay in
    /// ``Configuration``; what a release decides is here.
    public struct Profile: Sendable, Equatable, CustomStringConvertible {
        /// The release, as `uname -r` begins (`6.12`).
        public var release: String
        /// `/dev/iommu` and the VFIO device cdev `/dev/vfio/devices/vfioN` exist: iommufd came
        /// in 6.2 and `CONFIG_VFIO_DEVICE_CDEV` in 6.6, so a 6.1 kernel has neither.
        public var hasIOMMUFDAndCdev: Bool
        /// `vfio_info_cap_add` aligns every info capability to 8 bytes ("vfio: align capability
        /// structures", 6.6); before, capabilities are packed and a chain's `argsz` is a
        /// multiple of 4 only (type1's IOVA-range and DMA-available chain: 116 bytes on 6.1,
        /// 120 on 6.12).
        public var alignsInfoCapabilities: Bool
        /// vfio-pci allocates MSI-X vectors while MSI-X is enabled (6.5, on hosts whose MSI
        /// domain allows it), so `VFIO_DEVICE_GET_IRQ_INFO` leaves `VFIO_IRQ_INFO_NORESIZE`
        /// off for MSI-X; before, it is set.
        public var dynamicMSIX: Bool
        /// `VFIO_DEVICE_GET_INFO` and type1's `VFIO_IOMMU_GET_INFO` copy back
        /// `min(argsz, sizeof)` bytes of a zeroed structure, `pad` included (6.12). Before,
        /// they copy back through `cap_offset` when `argsz` reaches it (20 bytes) and the
        /// fields before it otherwise (16), so `pad` keeps whatever the caller left there.
        public var writesInfoPadding: Bool
        /// `VFIO_DEVICE_FEATURE`'s entries vfio-pci answers for a device with no migration,
        /// dirty-page logging or VF token: `LOW_POWER_ENTRY`, `_ENTRY_WITH_WAKEUP` and `_EXIT`
        /// (6.0). Migration (6.0), DMA logging (6.2) and `MIG_DATA_SIZE` (6.7) exist by release
        /// but answer `ENOTTY` without a variant driver, as every unknown feature does.
        public var lowPowerFeatures: Bool

        /// A profile with the given ABI choices; low-power features are on unless told otherwise.
        public init(
            release: String, hasIOMMUFDAndCdev: Bool, alignsInfoCapabilities: Bool, dynamicMSIX: Bool,
            writesInfoPadding: Bool, lowPowerFeatures: Bool = true
        ) {
            self.release = release
            self.hasIOMMUFDAndCdev = hasIOMMUFDAndCdev
            self.alignsInfoCapabilities = alignsInfoCapabilities
            self.dynamicMSIX = dynamicMSIX
            self.writesInfoPadding = writesInfoPadding
            self.lowPowerFeatures = lowPowerFeatures
        }

        /// Linux 6.1 (Debian 12's kernel, the `distro` guest of Tests/VM).
        public static let linux6_1 = Profile(
            release: "6.1", hasIOMMUFDAndCdev: false, alignsInfoCapabilities: false, dynamicMSIX: false, writesInfoPadding: false)
        /// Linux 6.12 (the `iommu` guest of Tests/VM).
        public static let linux6_12 = Profile(
            release: "6.12", hasIOMMUFDAndCdev: true, alignsInfoCapabilities: true, dynamicMSIX: true, writesInfoPadding: true)
        /// Every profile, oldest first.
        public static let all: [Profile] = [.linux6_1, .linux6_12]
        /// The newest release Tests/VM checks, which a mock plays unless told otherwise.
        public static let newest = linux6_12

        /// The profile of a `uname -r` release string (`6.1.0-28-amd64`, `6.12.48`): the
        /// newest profile not newer than it; nil for a release older than every profile.
        public init?(release: String) {
            guard let version = Self.version(release) else { return nil }
            guard let p = Self.all.last(where: { Self.version($0.release).map { !version.lexicographicallyPrecedes($0) } ?? false }) else {
                return nil
            }
            self = p
        }

        private static func version(_ release: String) -> [Int]? {
            let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
            return parts.count == 2 ? parts : nil
        }

        /// `Linux 6.12`.
        public var description: String { "Linux \(release)" }
    }

    /// A mock playing `profile`'s kernel on the machine `configuration` describes.
    public convenience init(profile: Profile, configuration: Configuration = Configuration()) {
        var c = configuration
        c.profile = profile
        self.init(configuration: c)
    }
}
