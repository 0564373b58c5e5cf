#!/bin/sh
# Check: binding edu0 to vfio-pci through sysfs gives exactly the device nodes VFIOKit's backends
# open: the group node /dev/vfio/GROUP (and, with iommufd, the cdev /dev/vfio/devices/vfioN named
# in sysfs) with an IOMMU; only /dev/vfio/noiommu-N without one. A fixture test of the kernel,
# independent of VFIOKit, so the harness proves what it relies on.
# configs: iommu noiommu distro
address=$(dev edu0)
sysfs_bind "$address" vfio-pci
group=$(basename "$(readlink "$(sysfs "$address")/iommu_group")")
expect ls -l /dev/vfio
case "$VM_CONFIG" in
  iommu | distro)
    expect_eq "edu0's group node" "$(ls /dev/vfio | grep -v '^vfio$' | grep -v '^devices$')" "$group"
    ;;
  noiommu)
    expect_eq "edu0's group node" "$(ls /dev/vfio | grep -v '^vfio$' | grep -v '^devices$')" "noiommu-$group"
    ;;
esac
if [ "$VM_CONFIG" = iommu ]; then
  cdev=$(ls "$(sysfs "$address")/vfio-dev" 2>/dev/null)
  [ -n "$cdev" ] || check_fail "vfio-pci made no vfio-dev entry for $address"
  [ -c "/dev/vfio/devices/$cdev" ] || check_fail "no character device /dev/vfio/devices/$cdev"
else
  [ -z "$(ls /dev/vfio/devices 2>/dev/null)" ] ||
    check_fail "device cdevs exist in the $VM_CONFIG configuration: $(ls /dev/vfio/devices)"
fi
sysfs_restore "$address"
expect_eq "driver of edu0 after the restore" "$(driver_of "$address")" none
[ -z "$(ls /dev/vfio | grep -v '^vfio$' | grep -v '^devices$')" ] ||
  check_fail "group nodes remain after the unbind: $(ls /dev/vfio)"
check_pass
