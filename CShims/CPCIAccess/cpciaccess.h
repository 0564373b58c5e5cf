/* libpci, with fixed-signature wrappers for its variadic calls. */
#ifndef CPCIACCESS_H
#define CPCIACCESS_H
#include <pci/pci.h>

/* pci_lookup_name for a vendor name (PCI_LOOKUP_VENDOR). */
static inline const char *cpci_vendor_name(struct pci_access *a, char *buf, int size, int vendor) {
    return pci_lookup_name(a, buf, size, PCI_LOOKUP_VENDOR, vendor);
}
/* pci_lookup_name for a device name (PCI_LOOKUP_DEVICE). */
static inline const char *cpci_device_name(struct pci_access *a, char *buf, int size, int vendor, int device) {
    return pci_lookup_name(a, buf, size, PCI_LOOKUP_DEVICE, vendor, device);
}
/* pci_lookup_name for a class name (PCI_LOOKUP_CLASS), from the 16-bit base+sub class. */
static inline const char *cpci_class_name(struct pci_access *a, char *buf, int size, int cls) {
    return pci_lookup_name(a, buf, size, PCI_LOOKUP_CLASS, cls);
}
#endif
