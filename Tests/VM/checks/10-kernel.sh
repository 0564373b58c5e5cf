#!/bin/sh
# Check: the booted kernel offers the VFIO interfaces this configuration is for, and 16 huge
# pages on /dev/hugepages for DMA buffers.
#   iommu:   the custom 6.12 kernel with intel-iommu: DMAR unit, interrupt remapping, IOMMU groups,
#            the legacy container /dev/vfio/vfio and iommufd /dev/iommu
#   noiommu: the custom kernel without an IOMMU, vfio in unsafe no-IOMMU mode, no IOMMU groups
#   distro:  Debian's kernel with intel-iommu, every module loaded, the legacy container only
# configs: iommu noiommu distro
expect uname -r
release=$(cat "$out")
has() { [ -e "$1" ] || check_fail "$1 is missing"; }
lacks() { [ ! -e "$1" ] || check_fail "$1 exists but must not in the $VM_CONFIG configuration"; }

for driver in vfio-pci uio_pci_generic nvme e1000e e1000; do
  has "/sys/bus/pci/drivers/$driver"
done
has /dev/vfio/vfio
grep -q ' /dev/hugepages hugetlbfs ' /proc/mounts || check_fail "hugetlbfs is not mounted at /dev/hugepages"
hugepages=$(awk '/^HugePages_Total:/ { print $2 }' /proc/meminfo)
[ "${hugepages:-0}" -ge 16 ] || check_fail "the kernel reserved ${hugepages:-no} huge pages, not the 16 asked for"
case "$VM_CONFIG" in
  iommu | distro)
    has /sys/class/iommu/dmar0
    [ -n "$(ls /sys/kernel/iommu_groups)" ] || check_fail "the kernel made no IOMMU groups"
    dmesg | grep -q 'Enabled IRQ remapping' || check_fail "interrupt remapping is not enabled"
    ;;
  noiommu)
    lacks /sys/class/iommu/dmar0
    [ -z "$(ls /sys/kernel/iommu_groups)" ] || check_fail "IOMMU groups exist without an IOMMU"
    expect_eq "vfio's enable_unsafe_noiommu_mode" \
      "$(cat /sys/module/vfio/parameters/enable_unsafe_noiommu_mode)" Y
    ;;
esac
case "$VM_CONFIG" in
  iommu | noiommu)
    case "$release" in 6.12.*) ;; *) check_fail "kernel $release is not the custom 6.12 one" ;; esac
    if [ "$VM_CONFIG" = iommu ]; then has /dev/iommu; fi
    ;;
  distro)
    case "$release" in *-amd64) ;; *) check_fail "kernel $release is not Debian's" ;; esac
    lacks /dev/iommu
    while read -r module; do
      name=$(echo "${module%.ko}" | tr - _)
      has "/sys/module/$name"
    done </vm/modules.load
    ;;
esac
check_pass "$release"
