import VFIODrivers

/// Why an export could not be made, opened or served; each names what and what to do.
public enum ExportError: Error, CustomStringConvertible {
    /// The namespace does not exist on the device.
    case noNamespace(UInt32, available: [UInt32])
    /// The driver underneath failed.
    case driver(NVMeError)
    /// A system call failed: the call, what it was for, and errno.
    case systemCall(String, purpose: String, errno: Int32)
    /// A queue index or depth outside what the export has.
    case invalidQueue(String)

    public var description: String {
        switch self {
        case let .noNamespace(id, available): "namespace \(id) does not exist: the device's active namespaces are \(available)"
        case let .driver(error): error.description
        case let .systemCall(call, purpose, errno): "\(call) failed (\(purpose)): errno \(errno)"
        case let .invalidQueue(why): why
        }
    }
}
