import PCI

/// Which devices a driver takes, like Linux's `struct pci_device_id`: nil fields match anything
/// (PCI_ANY_ID), and the class code is compared under a mask.
public struct PCIMatch: Sendable, Equatable {
    /// The vendor ID (config offset 0x00); nil matches any.
    public let vendor: UInt16?
    /// The device ID (config offset 0x02); nil matches any.
    public let device: UInt16?
    /// The subsystem vendor ID (config offset 0x2c); nil matches any.
    public let subsystemVendor: UInt16?
    /// The subsystem ID (config offset 0x2e); nil matches any.
    public let subsystemDevice: UInt16?
    /// The 24-bit class code (base, sub, interface), compared under `classMask`.
    public let classCode: UInt32?
    /// The bits of ``classCode`` that must be equal; 0xff_ffff (all 24) by default.
    public let classMask: UInt32

    /// An entry matching every given field; omitted fields match anything.
    public init(
        vendor: UInt16? = nil, device: UInt16? = nil, subsystemVendor: UInt16? = nil, subsystemDevice: UInt16? = nil,
        classCode: UInt32? = nil, classMask: UInt32 = 0xff_ffff
    ) {
        self.vendor = vendor
        self.device = device
        self.subsystemVendor = subsystemVendor
        self.subsystemDevice = subsystemDevice
        self.classCode = classCode
        self.classMask = classMask
    }

    /// True when a function with these IDs is one this entry takes.
    public func matches(_ ids: PCIDeviceIdentity) -> Bool {
        (vendor == nil || vendor == ids.vendor) && (device == nil || device == ids.device)
            && (subsystemVendor == nil || subsystemVendor == ids.subsystemVendor)
            && (subsystemDevice == nil || subsystemDevice == ids.subsystemDevice)
            && (classCode.map { $0 & classMask == ids.classCode & classMask } ?? true)
    }
}

/// The IDs a ``PCIMatch`` is compared with, as a function's config space holds them.
public struct PCIDeviceIdentity: Sendable, Equatable {
    /// The vendor ID (config offset 0x00).
    public var vendor: UInt16
    /// The device ID (config offset 0x02).
    public var device: UInt16
    /// The subsystem vendor ID (config offset 0x2c).
    public var subsystemVendor: UInt16
    /// The subsystem ID (config offset 0x2e).
    public var subsystemDevice: UInt16
    /// The 24-bit class code (base, sub, interface), config offset 0x09.
    public var classCode: UInt32

    /// IDs as given; subsystem IDs and class code are 0 unless given.
    public init(vendor: UInt16, device: UInt16, subsystemVendor: UInt16 = 0, subsystemDevice: UInt16 = 0, classCode: UInt32 = 0) {
        self.vendor = vendor
        self.device = device
        self.subsystemVendor = subsystemVendor
        self.subsystemDevice = subsystemDevice
        self.classCode = classCode
    }

    /// Reads the IDs from `device`'s config space (type 0 header).
    public init(reading device: PCIDevice) throws(VFIOError) {
        vendor = try device.readConfig(at: 0x00)
        self.device = try device.readConfig(at: 0x02)
        classCode = try device.readConfig(UInt32.self, at: 0x08) >> 8
        subsystemVendor = try device.readConfig(at: 0x2c)
        subsystemDevice = try device.readConfig(at: 0x2e)
    }
}

/// A userspace PCI driver, in the shape of the kernel's VFIO selftest drivers
/// (`tools/testing/selftests/vfio/lib/include/libvfio/vfio_pci_driver.h`).
///
/// Each operation may throw an error type of the driver's own; a host reports it by its
/// description.
///
/// - `init(device:loop:)` probes. Before: the device is opened, with no interrupt enabled and
///   no DMA mapped. The driver checks that the device is one it drives and may read and write
///   its registers, but when it returns (or throws) the device generates no DMA and no
///   interrupts. A probe that throws leaves nothing to release.
/// - ``start()`` brings the device up. Afterwards it may DMA to what the driver mapped and
///   interrupt on what the driver enabled. A start that throws is followed by ``stop()``, which
///   must therefore cope with a start done half-way; the host then releases the device.
/// - ``stop()`` quiesces the device. Afterwards it generates no DMA and no interrupts, every
///   handler the driver registered on the loop is unregistered, and every buffer it allocated
///   is freed. Work waiting on the device fails with an error rather than waiting forever.
///   It is called once after each start, and never concurrently with `start`. The
///   host disables interrupts, unmaps DMA and resets the device after it, so a driver that
///   cannot reach the device any more (it was removed) may simply return.
/// - ``handOver(into:)`` and ``adopt(device:loop:record:pieces:)`` keep a running device alive
///   across a change of driver instance (a restart or an upgrade of the process) without a
///   reset. A driver that is ``adoptable`` hands over instead of stopping: afterwards it no
///   longer touches the device, registers nothing on its loop, and leaves the device running,
///   its interrupts enabled, its DMA memory handed over (``DMABuffer/handOver()``) and its
///   state in a ``DriverStateRecord``. ``stop()`` after a hand-over does nothing. A successor
///   adopts from the record and the pieces, or starts afresh with a reset when it cannot
///   (``adoptOrStart(device:loop:from:configure:)``). A driver that is not adoptable keeps the
///   defaults: it refuses to hand over and is always started afresh.
public protocol PCIDriver: AnyObject, Sendable {
    /// The name `vfiokit run --driver` and the registry know the driver by.
    static var name: String { get }
    /// The devices the driver takes, first match wins.
    static var matches: [PCIMatch] { get }
    /// Probes `device`, whose handlers the driver registers on `loop`; see ``PCIDriver`` for what
    /// holds before and after.
    init(device: PCIDevice, loop: EventLoop) throws
    /// Brings the device up; see ``PCIDriver``.
    func start() throws
    /// Quiesces the device; see ``PCIDriver``. It does not throw: a driver that cannot reach the
    /// device any more simply returns.
    func stop()
    /// What the driver has done since it started, for a host's status and metrics. Reading
    /// it never blocks the driver's hot paths for long and allocates only for the snapshot.
    var activity: DriverActivity { get }
    /// True when the driver implements hand-over and adoption; false by default.
    static var adoptable: Bool { get }
    /// The layout version of the payload ``handOver(into:)`` writes, which ``adopt(device:loop:record:pieces:)``
    /// reads; raise it whenever the layout changes.
    static var stateVersion: UInt32 { get }
    /// Hands the running device over into `handOver`: its record and its DMA pieces. See
    /// ``PCIDriver`` for what holds afterwards. Throws, having touched nothing, when the driver
    /// is not running or not adoptable.
    func handOver(into handOver: inout DeviceHandOver) throws
    /// A driver for `device` that takes over from the predecessor that wrote `record` and handed
    /// over `pieces`, without resetting the device. Throws, with nothing registered, when the
    /// record does not describe the device as it is; the caller then starts afresh.
    static func adopt(device: PCIDevice, loop: EventLoop, record: DriverStateRecord, pieces: [DMAPiece]) throws -> Self
}

extension PCIDriver {
    /// No counts: a driver that keeps none reports an empty ``DriverActivity``.
    public var activity: DriverActivity { DriverActivity() }

    /// True when a function with these IDs is one of ``matches``.
    public static func supports(_ identity: PCIDeviceIdentity) -> Bool {
        matches.contains { $0.matches(identity) }
    }

    /// True when `device`'s config space identifies it as one of ``matches``.
    public static func supports(_ device: PCIDevice) throws(VFIOError) -> Bool {
        supports(try PCIDeviceIdentity(reading: device))
    }
}

/// A driver that can make its device do work on its own, with no client: a host calls
/// ``exercise()`` in a loop so that interrupts and I/O flow on sample devices.
public protocol ExercisableDriver: PCIDriver {
    /// Does one unit of work and waits for it, within a bounded time. Throws when the device
    /// fails it or stops answering (for instance after it was removed).
    func exercise() throws
}
