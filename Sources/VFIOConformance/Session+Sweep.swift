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
        step(
            "\(name) argsz=\(argsz)",
            describe: { _ in
                stride(from: 0, to: shown, by: 4).map { String(arg[u32: $0], radix: 16) }.joined(separator: " ")
            }
        ) { () throws(Errno) in
            _ = try system.ioctl(fd, UInt(request), arg.address)
        }
    }
}

extension Session {
    /// Reads the whole config region four bytes at a time and records it 16 bytes a line
    /// (`0x10: fea00000 0 0 0`), all-zero lines left out.
    func configDump(_ device: FileDescriptor, _ config: RegionDescription, _ name: String) {
        record("config \(name):")
        for line in stride(from: 0, to: Int(config.size), by: 16) {
            var words: [String] = []
            for at in stride(from: line, to: line + 16, by: 4) {
                var value: UInt32 = 0
                let n = try? withUnsafeMutableBytes(of: &value) { (b) throws(Errno) -> Int in
                    try system.pread(device, into: b, at: Int64(config.offset) + Int64(at))
                }
                words.append(n == 4 ? String(value, radix: 16) : "error")
            }
            if words.contains(where: { $0 != "0" }) { record("  \(hex(line)): \(words.joined(separator: " "))") }
        }
    }
}
