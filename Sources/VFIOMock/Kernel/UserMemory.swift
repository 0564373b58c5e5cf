import SystemPackage

/// Reads and writes of ioctl argument structures, which the caller passes as a pointer's bit
/// pattern. Like `copy_from_user`, a null pointer is `EFAULT`; any other address is trusted to
/// be the caller's memory, as the seam's contract requires.
struct UserPointer {
    let base: UnsafeMutableRawPointer

    init(_ argument: UInt) throws(Errno) {
        guard let p = UnsafeMutableRawPointer(bitPattern: argument) else { throw .badAddress }
        base = p
    }

    func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        base.loadUnaligned(fromByteOffset: offset, as: T.self)
    }

    func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        base.storeBytes(of: value, toByteOffset: offset, as: T.self)
    }

    func copy(from bytes: [UInt8], at offset: Int) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }

    func bytes(at offset: Int, count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: base + offset, count: count))
    }
}
