/* libpci, with fixed-signature wrappers for its variadic calls. */
#ifndef CPCIACCESS_H
#define CPCIACCESS_H
#include <pci/pci.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* libpci reports through variadic callbacks that pci_init would install. A pci_access used
   only for name lookups skips pci_init (which exits on a host without PCI), so these must be
   set by hand, and Swift cannot define C variadic functions. */
static void cpci_ignore_message(char *msg, ...) { (void)msg; }
static void cpci_fatal_error(char *msg, ...) {
    va_list args;
    va_start(args, msg);
    fputs("libpci: ", stderr);
    vfprintf(stderr, msg, args);
    fputc('\n', stderr);
    va_end(args);
    abort();
}
/* Installs the callbacks: warnings and debug output are ignored, errors (out of memory) abort. */
static inline void cpci_set_callbacks(struct pci_access *a) {
    a->warning = cpci_ignore_message;
    a->debug = cpci_ignore_message;
    a->error = cpci_fatal_error;
}

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
