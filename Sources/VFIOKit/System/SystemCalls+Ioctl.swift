import SystemPackage

extension SystemCalls {
    /// ioctl(2) whose argument is a pointer to `value`, which the kernel may read and update.
    @discardableResult
    public func ioctl<T>(_ fd: FileDescriptor, _ request: Int, _ value: inout T) throws(Errno) -> Int32 {
        try withUnsafeMutablePointer(to: &value) { (p) throws(Errno) -> Int32 in
            try ioctl(fd, UInt(request), UInt(bitPattern: p))
        }
    }

    /// ioctl(2) whose argument is a buffer of bytes (a struct followed by a variable-length tail).
    @discardableResult
    public func ioctl(_ fd: FileDescriptor, _ request: Int, buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int32 {
        try ioctl(fd, UInt(request), UInt(bitPattern: buffer.baseAddress))
    }

    /// An info ioctl under VFIO's argsz protocol: the reply starts as `size` zeroed bytes with
    /// `argsz` (offset 0) set, `prepare` fills in the request, and while the kernel answers with
    /// a larger argsz (capabilities that did not fit) the call is repeated with that much room,
    /// up to 64 KiB. `reply` reads the final answer before the buffer is freed.
    public func infoIoctl<R>(
        _ fd: FileDescriptor, _ request: Int, size: Int, prepare: (UnsafeMutableRawBufferPointer) -> Void,
        reply: (UnsafeRawBufferPointer) throws(Errno) -> R
    ) throws(Errno) -> R {
        var size = size
        while true {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
            defer { buffer.deallocate() }
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            buffer.storeBytes(of: UInt32(size), toByteOffset: 0, as: UInt32.self)
            prepare(buffer)
            try ioctl(fd, request, buffer: buffer)
            let needed = Int(buffer.load(fromByteOffset: 0, as: UInt32.self))
            if needed > size, needed <= 1 << 16 {
                size = needed
                continue
            }
            return try reply(UnsafeRawBufferPointer(buffer))
        }
    }

    /// ioctl(2) whose argument is a plain integer.
    @discardableResult
    public func ioctl(_ fd: FileDescriptor, _ request: Int, value: Int) throws(Errno) -> Int32 {
        try ioctl(fd, UInt(request), UInt(bitPattern: value))
    }
}
