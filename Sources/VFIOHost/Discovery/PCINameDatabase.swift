import CPCIAccess
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Vendor, device and class names from pci.ids, looked up by libpci exactly as lspci does.
///
/// An ID that pci.ids does not know is shown the way lspci shows it (`Device 0d57`), and a
/// missing pci.ids makes every name numeric; a lookup never fails. Safe to share between
/// threads: libpci's state is used under a lock.
public final class PCINameDatabase: Sendable {
    private let access: Mutex<LibPCIHandle>

    /// Uses libpci's default pci.ids (and udev's hwdb, as lspci does), or `idsFile` instead.
    public init(idsFile: String? = nil) {
        let handle = LibPCIHandle()
        if let idsFile {
            // libpci keeps the pointer; strdup'ed and flagged so pci_cleanup frees it.
            pci_set_name_list_path(handle.pointer, strdup(idsFile), 1)
            handle.pointer.pointee.id_lookup_mode |= UInt32(PCI_LOOKUP_NO_HWDB.rawValue)
        }
        access = Mutex(handle)
    }

    public func vendorName(_ vendor: UInt16) -> String {
        lookup { a, buf, size in cpci_vendor_name(a, buf, size, Int32(vendor)) }
    }

    public func deviceName(vendor: UInt16, device: UInt16) -> String {
        lookup { a, buf, size in cpci_device_name(a, buf, size, Int32(vendor), Int32(device)) }
    }

    /// The name of a class from its base class and subclass (`0x0108`).
    public func className(_ classID: UInt16) -> String {
        lookup { a, buf, size in cpci_class_name(a, buf, size, Int32(classID)) }
    }

    private func lookup(
        _ call: (UnsafeMutablePointer<pci_access>, UnsafeMutablePointer<CChar>, Int32) -> UnsafePointer<CChar>?
    ) -> String {
        access.withLock { handle in
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer in
                guard let name = call(handle.pointer, buffer.baseAddress!, Int32(buffer.count)) else { return "" }
                return String(cString: name)
            }
        }
    }
}

/// Owns one `pci_access`, created without `pci_init`: name lookups need no access method,
/// and `pci_init` would exit the process on a host without PCI. The callbacks `pci_init`
/// would install are set by the shim instead.
private final class LibPCIHandle: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<pci_access>

    init() {
        pointer = pci_alloc()
        cpci_set_callbacks(pointer)
    }

    deinit { pci_cleanup(pointer) }
}
