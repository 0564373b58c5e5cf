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

    /// ioctl(2) whose argument is a plain integer.
    @discardableResult
    public func ioctl(_ fd: FileDescriptor, _ request: Int, value: Int) throws(Errno) -> Int32 {
        try ioctl(fd, UInt(request), UInt(bitPattern: value))
    }
}
