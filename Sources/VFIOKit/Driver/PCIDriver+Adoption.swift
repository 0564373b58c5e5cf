import Logging
import PCI

/// What a driver leaves its successor for one device: its state record, encoded, and the DMA
/// buffers it handed over. A host carries it to the successor: in this process as it is, or,
/// for another process, the record in a memfd and each piece's file by `SCM_RIGHTS` or
/// systemd's file descriptor store.
public struct DeviceHandOver: Sendable, Equatable {
    /// The device handed over.
    public var address: PCIAddress
    /// The driver's ``DriverStateRecord``, encoded; nil until the driver wrote one.
    public var record: [UInt8]?
    /// The DMA buffers the driver handed over, still mapped at their IOVAs.
    public var pieces: [DMAPiece]

    /// A hand-over of `address` with what is given (nothing, for a driver to fill in).
    public init(address: PCIAddress, record: [UInt8]? = nil, pieces: [DMAPiece] = []) {
        self.address = address
        self.record = record
        self.pieces = pieces
    }
}

/// How a driver came up on a device that may have been handed over.
public enum AdoptionOutcome: Sendable, Equatable, CustomStringConvertible {
    /// The driver took the running device over; the device was not reset.
    case adopted
    /// The driver started afresh after a reset, for `because`.
    case reset(because: String)

    /// "adopted, no reset" or "reset, because …", as the host logs it.
    public var description: String {
        switch self {
        case .adopted: "adopted, no reset"
        case let .reset(reason): "reset, because \(reason)"
        }
    }
}

extension PCIDriver {
    /// Not adoptable: the driver keeps the default of starting afresh.
    public static var adoptable: Bool { false }

    /// 0: a driver that is not adoptable writes no state.
    public static var stateVersion: UInt32 { 0 }

    /// Refuses: the driver is not adoptable, so its host stops it instead.
    public func handOver(into handOver: inout DeviceHandOver) throws {
        throw VFIOError.invalidArgument(
            operation: "handing \(handOver.address) over", reason: "the \(Self.name) driver cannot be adopted; stop it instead")
    }

    /// Refuses: the driver is not adoptable, so it is started afresh.
    public static func adopt(device: PCIDevice, loop: EventLoop, record: DriverStateRecord, pieces: [DMAPiece]) throws -> Self {
        throw VFIOError.invalidArgument(operation: "adopting \(device.address)", reason: "the \(name) driver cannot be adopted")
    }

    /// Brings a driver up on `device`: adopts it from `handOver` when the driver is adoptable
    /// and the record is there, whole, this driver's, in a version it reads, and describes the
    /// device as it is; otherwise releases what the predecessor left (the hand-over's DMA pieces
    /// and the device's interrupts), resets the device, probes, calls `configure` and starts. Logs the outcome
    /// for the device ("adopted, no reset" or "reset, because …") and returns it. Throws only
    /// when the fresh start fails (after stopping the driver, as a host would).
    public static func adoptOrStart(
        device: PCIDevice, loop: EventLoop, from handOver: DeviceHandOver?, configure: (Self) throws -> Void = { _ in }
    ) throws -> (driver: Self, outcome: AdoptionOutcome) {
        let reason: String
        let pieces = handOver?.pieces ?? []
        do {
            let driver = try adoptIfPossible(device: device, loop: loop, from: handOver)
            // Pieces the driver did not claim have no owner left.
            device.dma.releaseHandedOver(pieces)
            log(.adopted, device: device)
            return (driver, .adopted)
        } catch {
            reason = "\(error)"
        }
        device.dma.releaseHandedOver(pieces)
        device.interrupts.disableAll()
        try device.setBusMaster(false)
        if device.canReset { try device.reset() }
        let outcome = AdoptionOutcome.reset(because: device.canReset ? reason : "\(reason) (the device has no reset; started without one)")
        let driver = try Self(device: device, loop: loop)
        try configure(driver)
        do { try driver.start() } catch {
            driver.stop()
            throw error
        }
        log(outcome, device: device)
        return (driver, outcome)
    }

    private static func adoptIfPossible(device: PCIDevice, loop: EventLoop, from handOver: DeviceHandOver?) throws -> Self {
        guard adoptable else { throw DriverRecordError.notAdoptable(driver: name) }
        guard let handOver, let bytes = handOver.record else { throw DriverRecordError.missing }
        guard handOver.address == device.address else {
            throw DriverRecordError.stale(driver: name, reason: "it was handed over for \(handOver.address), not \(device.address)")
        }
        let record = try DriverStateRecord(decoding: bytes)
        try record.check(driver: name, stateVersion: stateVersion)
        return try adopt(device: device, loop: loop, record: record, pieces: handOver.pieces)
    }

    private static func log(_ outcome: AdoptionOutcome, device: PCIDevice) {
        device.context.logger.notice(
            "\(outcome)", metadata: ["device": "\(device.address)", "driver": "\(name)", "adopted": "\(outcome == .adopted)"])
    }
}
