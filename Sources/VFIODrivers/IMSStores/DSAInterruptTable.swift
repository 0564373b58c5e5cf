import VFIOKit

/// An on-device IMS table in a BAR, in Intel DSA's layout (the kernel's
/// `drivers/dma/idxd/registers.h`): 16-byte slots of `addr_lo`, `addr_hi`, `data` and `ctrl`,
/// where `ctrl` bit 0 masks the slot, bit 3 enables the PASID and bits 31:12 hold it.
///
/// The table sits at BAR0 + `TABLE_OFFSET.ims` × 0x100 (the 16-bit field at bits 63:48 of the
/// register at 0x60) and holds `GENCAP.max_ims_mult` × 256 slots (bits 30:25 of GENCAP at 0x10).
/// Every update is flushed by reading the slot's `ctrl` back, so it has taken effect when the
/// call returns and ``commit(timeout:)`` has nothing left to wait for: it only reports a
/// register access of the updates that failed (on a trapped BAR, see ``Region/checkAccesses()``).
public final class DSAInterruptTable: InterruptMessageStore {
    public static let gencapOffset = 0x10
    public static let tableOffsetRegister = 0x60
    public static let tableOffsetUnit = 0x100
    public static let entrySize = 16
    public static let maskBit: UInt32 = 1 << 0
    public static let pasidEnableBit: UInt32 = 1 << 3

    public let capacity: Int
    /// The table's offset in the BAR.
    public let tableOffset: Int
    public var supportsMasking: Bool { true }
    private let bar: Region
    private let pasidBits: UInt32

    /// Reads the table's place and size from the device's registers in `bar`. With `pasid`,
    /// every message is tagged with it (ctrl bit 3 and bits 31:12).
    public init(bar: Region, pasid: UInt32? = nil) throws(IMSError) {
        let gencap: UInt64
        let offsets: UInt64
        do {
            gencap = try bar.read(UInt64.self, at: Self.gencapOffset)
            offsets = try bar.read(UInt64.self, at: Self.tableOffsetRegister)
        } catch { throw .framework(error) }
        let multiplier = Int((gencap >> 25) & 0x3f)
        tableOffset = Int(offsets >> 48) * Self.tableOffsetUnit
        capacity = multiplier * 256
        guard capacity > 0 else { throw .store(Failure.noTable) }
        guard tableOffset > 0, tableOffset + capacity * Self.entrySize <= bar.size else {
            throw .store(Failure.tableOutsideBAR(offset: tableOffset, slots: capacity, barSize: bar.size))
        }
        if let pasid, pasid >= 1 << 20 { throw .store(Failure.pasidTooWide(pasid)) }
        self.bar = bar
        pasidBits = pasid.map { $0 << 12 | Self.pasidEnableBit } ?? 0
    }

    /// Writes the address and data, then reads ctrl back so the writes have reached the device.
    public func write(_ message: InterruptMessage, slot: Int) {
        put(slot, 0, UInt32(truncatingIfNeeded: message.address))
        put(slot, 4, UInt32(truncatingIfNeeded: message.address >> 32))
        put(slot, 8, message.data)
        _ = control(slot)
    }

    public func mask(_ slot: Int) { setControl(slot, pasidBits | Self.maskBit) }

    public func unmask(_ slot: Int) { setControl(slot, pasidBits) }

    /// DSA's table has no pending bit software can read.
    public func pending(_ slot: Int) -> Bool { false }

    /// Masks the slot, then zeroes its address and data: it stays masked.
    public func shutdown(_ slot: Int) {
        setControl(slot, Self.maskBit)
        put(slot, 0, 0)
        put(slot, 4, 0)
        put(slot, 8, 0)
        _ = control(slot)
    }

    public func commit(timeout: Duration) throws(IMSError) {
        do { try bar.checkAccesses() } catch { throw .commitFailed(store: "the DSA-layout IMS table", cause: error) }
    }

    /// The raw 16 bytes of `slot`, for inspection.
    public func entry(_ slot: Int) -> (addressLow: UInt32, addressHigh: UInt32, data: UInt32, control: UInt32) {
        (get(slot, 0), get(slot, 4), get(slot, 8), control(slot))
    }

    private func setControl(_ slot: Int, _ value: UInt32) {
        put(slot, 12, value)
        _ = control(slot)
    }

    private func control(_ slot: Int) -> UInt32 { get(slot, 12) }

    // Failed accesses are kept by the region for commit; a failed read gives all ones.
    private func put(_ slot: Int, _ field: Int, _ value: UInt32) {
        bar.trappedWrite(value, at: tableOffset + slot * Self.entrySize + field)
    }

    private func get(_ slot: Int, _ field: Int) -> UInt32 {
        bar.trappedRead(at: tableOffset + slot * Self.entrySize + field)
    }

    /// Why a device's registers describe no usable table, carried by ``IMSError/store(_:)``.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// GENCAP.max_ims_mult is 0.
        case noTable
        /// TABLE_OFFSET and GENCAP place the table (partly) outside BAR 0.
        case tableOutsideBAR(offset: Int, slots: Int, barSize: Int)
        /// A PASID wider than 20 bits was asked for.
        case pasidTooWide(UInt32)

        public var description: String {
            switch self {
            case .noTable: "the device reports no IMS table (GENCAP.max_ims_mult is 0)"
            case let .tableOutsideBAR(offset, slots, size):
                "the IMS table at BAR offset 0x\(String(offset, radix: 16)) with \(slots) slots does not fit the \(size)-byte BAR"
            case let .pasidTooWide(pasid): "PASID \(pasid) does not fit 20 bits"
            }
        }
    }
}
