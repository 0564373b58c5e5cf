import VFIOKit

/// Userspace's `pci-stub`: holds a function open and quiet in its IOMMU context. Start turns
/// bus mastering off; it enables no interrupt, maps no DMA and touches no register. For a
/// function that must be open beside the one that is driven (the other function of a shared
/// IOMMU group, say, when no driver here takes it). Its match table is empty, so it is chosen
/// only by name (`--driver stub` or the config file).
public final class StubDriver: PCIDriver {
    public static let name = "stub"
    public static let matches: [PCIMatch] = []

    private let device: PCIDevice

    public init(device: PCIDevice, loop: EventLoop) throws { self.device = device }

    public func start() throws { try device.setBusMaster(false) }

    public func stop() {}
}
