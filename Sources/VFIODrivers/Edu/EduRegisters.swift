import VFIOKit

/// The register map of QEMU's educational device (docs/specs/edu.rst), BAR 0.
public enum EduRegisters: RegisterLayout {
    public static let extent = 0x100

    /// 0xRRrr00ed: major and minor version over the 0xed signature.
    @inlinable public static var identification: Register<Self, UInt32> { .init(0x00) }
    /// Reads back the bitwise inverse of what was written.
    @inlinable public static var liveness: Register<Self, UInt32> { .init(0x04) }
    /// Write n to start computing n!; read the result once `status` clears `computing`.
    @inlinable public static var factorial: Register<Self, UInt32> { .init(0x08) }
    @inlinable public static var status: Register<Self, UInt32> { .init(0x20) }
    /// The causes of the pending interrupt, ORed.
    @inlinable public static var interruptStatus: Register<Self, UInt32> { .init(0x24) }
    /// Writing ORs the value into `interruptStatus` and raises the interrupt.
    @inlinable public static var interruptRaise: Register<Self, UInt32> { .init(0x60) }
    /// Writing clears those bits of `interruptStatus`; INTx drops when none are left.
    @inlinable public static var interruptAcknowledge: Register<Self, UInt32> { .init(0x64) }
    @inlinable public static var dmaSource: Register<Self, UInt64> { .init(0x80) }
    @inlinable public static var dmaDestination: Register<Self, UInt64> { .init(0x88) }
    @inlinable public static var dmaCount: Register<Self, UInt64> { .init(0x90) }
    @inlinable public static var dmaCommand: Register<Self, UInt64> { .init(0x98) }

    public enum Status {
        public static let computing: UInt32 = 0x01
        public static let interruptOnFactorial: UInt32 = 0x80
    }

    public enum Interrupt {
        public static let factorial: UInt32 = 0x001
        public static let dma: UInt32 = 0x100
    }

    public enum DMACommand {
        public static let start: UInt64 = 0x1
        /// Set: device buffer to RAM; clear: RAM to device buffer.
        public static let toRAM: UInt64 = 0x2
        public static let interrupt: UInt64 = 0x4
    }

    /// Where the device's 4 KiB DMA buffer sits in its DMA address space.
    public static let bufferAddress: UInt64 = 0x40000
    public static let bufferSize = 4096
    /// The device drops address bits above 28.
    public static let dmaLimit: UInt64 = 1 << 28
}
