/// A zeroed, 8-byte aligned ioctl argument whose fields are read and written by byte offset,
/// so every scenario states exactly what it hands the kernel.
final class IoctlArgument {
    let bytes: UnsafeMutableRawBufferPointer

    init(size: Int) {
        bytes = .allocate(byteCount: size, alignment: 8)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// A zeroed argument of `size` bytes whose first 32-bit field, `argsz` (`size` in iommufd's
    /// structures), says so, as every VFIO and iommufd structure with a size header wants.
    convenience init(argsz size: Int) {
        self.init(size: size)
        self[u32: 0] = UInt32(size)
    }

    deinit { bytes.deallocate() }

    var address: UInt { UInt(bitPattern: bytes.baseAddress) }

    subscript(u32 offset: Int) -> UInt32 {
        get { bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
        set { bytes.storeBytes(of: newValue, toByteOffset: offset, as: UInt32.self) }
    }

    subscript(u64 offset: Int) -> UInt64 {
        get { bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        set { bytes.storeBytes(of: newValue, toByteOffset: offset, as: UInt64.self) }
    }

    subscript(i32 offset: Int) -> Int32 {
        get { bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self) }
        set { bytes.storeBytes(of: newValue, toByteOffset: offset, as: Int32.self) }
    }

    subscript(u16 offset: Int) -> UInt16 {
        bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
    }
}

/// `0x…` for records.
func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
