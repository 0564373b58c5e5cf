import PCI

/// Which devices a driver takes, like Linux's `struct pci_device_id`: nil fields match anything.
public struct PCIMatch: Sendable, Equatable {
    public let vendor: UInt16?
    public let device: UInt16?
    /// The 24-bit class code (base, sub, interface), compared under `classMask`.
    public let classCode: UInt32?
    public let classMask: UInt32

    /// An entry matching every given field; omitted fields match anything (PCI_ANY_ID).
    public init(vendor: UInt16? = nil, device: UInt16? = nil, classCode: UInt32? = nil, classMask: UInt32 = 0xff_ffff) {
        self.vendor = vendor
        self.device = device
        self.classCode = classCode
        self.classMask = classMask
    }

    /// True when a function with these IDs and class is one this entry takes.
    public func matches(vendor v: UInt16, device d: UInt16, classCode c: UInt32) -> Bool {
        (vendor == nil || vendor == v) && (device == nil || device == d)
            && (classCode.map { $0 & classMask == c & classMask } ?? true)
    }
}

/// A userspace PCI driver, in the shape of the kernel's VFIO selftest drivers.
///
/// - `init(device:loop:)` probes: it checks the device is one it drives and may read it,
///   but leaves it as it found it (no DMA, no interrupts) and throws if it is not.
///
/// Drivers throw their own error types; `VFIOError` is for what the framework refuses.
/// - ``start()`` brings the device up; afterwards it may DMA and interrupt.
/// - ``stop()`` quiesces it; afterwards the device generates no DMA and no interrupts, and
///   every interrupt source the driver registered on the loop is gone.
public protocol PCIDriver: AnyObject {
    static var name: String { get }
    static var matches: [PCIMatch] { get }
    init(device: PCIDevice, loop: EventLoop) throws
    func start() throws
    func stop()
}

extension PCIDriver {
    /// True when `device`'s config space identifies it as one of ``matches``.
    public static func supports(_ device: PCIDevice) throws(VFIOError) -> Bool {
        let vendor: UInt16 = try device.readConfig(at: 0x00)
        let id: UInt16 = try device.readConfig(at: 0x02)
        let classCode = try device.readConfig(UInt32.self, at: 0x08) >> 8
        return matches.contains { $0.matches(vendor: vendor, device: id, classCode: classCode) }
    }
}
