#!/bin/sh
# Check: every emulated device is where /vm/devices says, with its vendor:device, its kernel
# driver (the real nvme, e1000e and e1000 drivers bind theirs; nothing binds edu or the bridge),
# and its IOMMU
# group: one of its own for each device on the root bus, one shared by the bridge and the two
# devices behind it. No-IOMMU mode has no groups at all.
# configs: iommu noiommu distro
for role in $(roles); do
  address=$(dev "$role")
  path=$(sysfs "$address")
  [ -e "$path" ] || check_fail "no PCI device $address ($role)"
  id="$(sed 's/^0x//' "$path/vendor"):$(sed 's/^0x//' "$path/device")"
  expect_eq "vendor:device of $role ($address)" "$id" "$(dev_id "$role")"
done

expect_eq "driver of nvme" "$(driver_of "$(dev nvme)")" nvme
expect_eq "driver of e1000e" "$(driver_of "$(dev e1000e)")" e1000e
expect_eq "driver of bridge-nic" "$(driver_of "$(dev bridge-nic)")" e1000
for role in edu0 edu-uio bridge-edu bridge; do
  expect_eq "driver of $role" "$(driver_of "$(dev "$role")")" none
done

if [ "$VM_CONFIG" = noiommu ]; then
  for role in $(roles); do
    expect_eq "IOMMU group of $role" "$(group_of "$(dev "$role")")" none
  done
  check_pass
fi
for role in edu0 edu-uio nvme e1000e; do
  address=$(dev "$role")
  expect_eq "IOMMU group of $role" "$(group_members "$address")" "$address"
done
expect_eq "IOMMU group of the bridge" "$(group_members "$(dev bridge)")" \
  "$(dev bridge) $(dev bridge-edu) $(dev bridge-nic)"
check_pass
