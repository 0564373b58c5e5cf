/// The NBD protocol's numbers (the nbd project's doc/proto.md): magics, handshake and option
/// codes, transmission flags, commands and reply types. Everything on the wire is big-endian.
enum NBD {
    // MARK: Handshake
    static let initMagic: UInt64 = 0x4e42_444d_4147_4943  // "NBDMAGIC"
    /// The payload a client may send without regard to the advertised block sizes (the
    /// protocol's default maximum, which the kernel's nbd client uses).
    static let defaultMaxPayload = 32 << 20
    static let optionMagic: UInt64 = 0x4948_4156_454f_5054  // "IHAVEOPT"
    static let optionReplyMagic: UInt64 = 0x0003_e889_0455_65a9

    /// Handshake flags (server) and client flags.
    static let flagFixedNewstyle: UInt16 = 1 << 0
    static let flagNoZeroes: UInt16 = 1 << 1
    static let clientFlagFixedNewstyle: UInt32 = 1 << 0
    static let clientFlagNoZeroes: UInt32 = 1 << 1

    enum Option {
        static let exportName: UInt32 = 1, abort: UInt32 = 2, list: UInt32 = 3
        static let info: UInt32 = 6, go: UInt32 = 7, structuredReply: UInt32 = 8
    }

    enum Reply {
        static let ack: UInt32 = 1, server: UInt32 = 2, info: UInt32 = 3
        static let errorUnsupported: UInt32 = 1 << 31 | 1
        static let errorInvalid: UInt32 = 1 << 31 | 3
        static let errorUnknown: UInt32 = 1 << 31 | 6
        static let errorTooBig: UInt32 = 1 << 31 | 9
    }

    enum Info {
        static let export: UInt16 = 0, name: UInt16 = 1, blockSize: UInt16 = 3
    }

    /// Transmission flags.
    enum Flag {
        static let hasFlags: UInt16 = 1 << 0, readOnly: UInt16 = 1 << 1, sendFlush: UInt16 = 1 << 2
        static let sendFUA: UInt16 = 1 << 3, sendTrim: UInt16 = 1 << 5, sendWriteZeroes: UInt16 = 1 << 6
        static let canMultiConn: UInt16 = 1 << 8
    }

    // MARK: Transmission
    static let requestMagic: UInt32 = 0x2560_9513
    static let simpleReplyMagic: UInt32 = 0x6744_6698
    static let structuredReplyMagic: UInt32 = 0x668e_33ef
    static let requestHeaderSize = 28

    enum Command {
        static let read: UInt16 = 0, write: UInt16 = 1, disconnect: UInt16 = 2, flush: UInt16 = 3
        static let trim: UInt16 = 4, writeZeroes: UInt16 = 6
    }

    enum CommandFlag {
        static let fua: UInt16 = 1 << 0, noHole: UInt16 = 1 << 1
    }

    enum ReplyType {
        static let none: UInt16 = 0, offsetData: UInt16 = 1, error: UInt16 = 1 << 15 | 1
        static let flagDone: UInt16 = 1
    }

    /// The errors a reply may carry (their Linux errno values are the same numbers).
    enum Error {
        static let perm: UInt32 = 1, io: UInt32 = 5, noMemory: UInt32 = 12, invalid: UInt32 = 22
        static let noSpace: UInt32 = 28, overflow: UInt32 = 75, notSupported: UInt32 = 95, shutdown: UInt32 = 108

        /// The NBD error for an errno: itself when the protocol has it, EIO otherwise.
        static func from(errno: Int32) -> UInt32 {
            switch UInt32(errno) {
            case perm, io, noMemory, invalid, noSpace, overflow, notSupported, shutdown: return UInt32(errno)
            default: return io
            }
        }
    }
}

/// Big-endian fields in a byte buffer.
extension UnsafeMutableRawPointer {
    @inline(__always) func storeBE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }

    @inline(__always) func loadBE<T: FixedWidthInteger>(at offset: Int, as: T.Type) -> T {
        T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
