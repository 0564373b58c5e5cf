#!/bin/sh
# Check: binding edu-uio to uio_pci_generic through sysfs gives /dev/uio0 for that device, the
# node VFIOKit's UIO backend opens (INTx through read/write, BARs through sysfs resource files).
# A fixture test of the kernel, independent of VFIOKit.
# configs: iommu distro
address=$(dev edu-uio)
sysfs_bind "$address" uio_pci_generic
[ -c /dev/uio0 ] || check_fail "no /dev/uio0 after binding $address to uio_pci_generic"
expect_eq "the device behind uio0" "$(basename "$(readlink /sys/class/uio/uio0/device)")" "$address"
expect_eq "uio0's name" "$(cat /sys/class/uio/uio0/name)" uio_pci_generic
[ -e "$(sysfs "$address")/resource0" ] || check_fail "no resource0 file for $address"
sysfs_restore "$address"
[ ! -e /dev/uio0 ] || check_fail "/dev/uio0 remains after the unbind"
check_pass
