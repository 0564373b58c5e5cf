import SystemPackage

extension Session {
    /// An info ioctl with `argsz` in a 64-byte argument whose other bytes are 0xa5 (`index`
    /// at offset 8 when given): records the errno, or every 32-bit word of the first
    /// `shown` bytes as the kernel left them, so fields, padding and bytes past `argsz` that
    /// it wrote or left alone all show.
    func infoSweep(_ name: String, _ fd: FileDescriptor, _ request: Int, argsz: Int, index: UInt32? = nil, shown: Int) {
        let arg = IoctlArgument(size: 64)
        arg.bytes.initializeMemory(as: UInt8.self, repeating: 0xa5)
        arg[u32: 0] = UInt32(argsz)
        if let index { arg[u32: 8] = index }
        step("\(name) argsz=\(argsz)", describe: { _ in
            stride(from: 0, to: shown, by: 4).map { String(arg[u32: $0], radix: 16) }.joined(separator: " ")
        }) { () throws(Errno) in
            _ = try system.ioctl(fd, UInt(request), arg.address)
        }
    }
}
