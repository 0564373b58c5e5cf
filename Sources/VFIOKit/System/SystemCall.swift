import PCI

/// A system call, as a value: which call, on which file, for which device, and what else
/// identifies it (region and offset, IOVA, vector). ``VFIOError/systemCall(operation:errno:)``
/// carries the one that failed, so code that must tell failures apart compares fields, never
/// message text. Its description is what messages show: `open /dev/vfio/5 for 0000:01:00.1`,
/// `VFIO_DEVICE_SET_IRQS(0000:03:00.0, MSI-X, start 0, count 4)`.
public struct SystemCall: Hashable, Sendable, CustomStringConvertible {
    /// The C function or ioctl request: `open`, `pread`, `VFIO_DEVICE_BIND_IOMMUFD`.
    public let name: String
    /// The file the call was made on, when it names one.
    public let path: String?
    /// The device the call was made for.
    public let device: PCIAddress?
    /// What else identifies the call: `region 0 at 0x40`, `iova 0x1000, 4096 bytes`.
    public let detail: String?

    /// A call named `name`, with whatever identifies it; none of the fields is checked.
    public init(_ name: String, path: String? = nil, device: PCIAddress? = nil, detail: String? = nil) {
        self.name = name
        self.path = path
        self.device = device
        self.detail = detail
    }

    /// True for an ioctl request (its name is the kernel's upper-case macro).
    public var isIoctl: Bool { name.first?.isUppercase == true }

    /// An ioctl as `NAME(device, path, detail)`; another call as `name path for device detail`
    /// (`of device` when there is no path).
    public var description: String {
        if isIoctl {
            let arguments = [device?.description, path, detail].compactMap { $0 }
            return arguments.isEmpty ? name : "\(name)(\(arguments.joined(separator: ", ")))"
        }
        var text = name
        if let path { text += " \(path)" }
        if let device { text += path == nil ? " of \(device)" : " for \(device)" }
        if let detail { text += " \(detail)" }
        return text
    }
}
