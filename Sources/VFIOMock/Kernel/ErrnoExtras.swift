#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

extension Errno {
    /// `EBADFD`: a descriptor of the wrong kind (e.g. not a container or iommufd).
    static var badFileDescriptorState: Errno { Errno(rawValue: EBADFD) }
}
