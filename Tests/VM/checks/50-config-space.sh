#!/bin/sh
# Check: the devices' config spaces say what the VFIO checks expect of them: QEMU's NVMe has 65
# MSI-X vectors with table and PBA in BAR 0, e1000e has 5 in BAR 3 (and MSI), edu has MSI and no
# MSI-X. Read through sysfs, independent of VFIOKit.
# configs: iommu
MSIX=0x11 MSI=0x05

# Asserts ROLE's MSI-X vector count and the BAR its table and PBA live in.
expect_msix() {
  local role=$1 vectors=$2 bar=$3 address cap
  address=$(dev "$role")
  cap=$(capability_offset "$address" $MSIX)
  [ -n "$cap" ] || check_fail "$role ($address) has no MSI-X capability"
  expect_eq "$role's MSI-X vector count" $(($(config_read "$address" $((cap + 2)) 2) % 2048 + 1)) "$vectors"
  expect_eq "the BAR of $role's MSI-X table" $(($(config_read "$address" $((cap + 4)) 4) % 8)) "$bar"
  expect_eq "the BAR of $role's MSI-X PBA" $(($(config_read "$address" $((cap + 8)) 4) % 8)) "$bar"
}

expect_msix nvme 65 0
expect_msix e1000e 5 3
[ -n "$(capability_offset "$(dev e1000e)" $MSI)" ] || check_fail "e1000e has no MSI capability"
[ -n "$(capability_offset "$(dev edu0)" $MSI)" ] || check_fail "edu has no MSI capability"
[ -z "$(capability_offset "$(dev edu0)" $MSIX)" ] || check_fail "edu has an MSI-X capability"
check_pass
