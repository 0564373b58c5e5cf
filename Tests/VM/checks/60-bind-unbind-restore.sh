#!/bin/sh
# Check: `vfiokit bind` hands nvme and e1000e to vfio-pci (their group node appears), and
# `vfiokit unbind --restore` gives each back to its real kernel driver, which probes it again:
# the namespace block device and the network interface come back. On the distro kernel those
# drivers are Debian's nvme and e1000e modules. edu goes to uio_pci_generic and back to none.
# configs: iommu distro
for role in nvme e1000e; do
  address=$(dev "$role")
  before=$(driver_of "$address")
  expect vfiokit bind "$address"
  expect_eq "driver of $role after bind" "$(driver_of "$address")" vfio-pci
  group=$(group_of "$address")
  [ -c "/dev/vfio/$group" ] || check_fail "no /dev/vfio/$group after binding $role"
  expect vfiokit unbind "$address" --restore
  expect_eq "driver of $role after unbind --restore" "$(driver_of "$address")" "$before"
done
wait_for 20 test -b /dev/nvme0n1 || check_fail "the nvme driver made no /dev/nvme0n1 after the restore"
wait_for 20 test -n "$(ls "$(sysfs "$(dev e1000e)")/net" 2>/dev/null)" ||
  check_fail "the e1000e driver made no network interface after the restore"

address=$(dev edu-uio)
expect vfiokit bind "$address" --driver uio_pci_generic
expect_eq "driver of edu-uio after bind --driver uio_pci_generic" "$(driver_of "$address")" uio_pci_generic
[ -c /dev/uio0 ] || check_fail "no /dev/uio0 after binding edu-uio to uio_pci_generic"
expect vfiokit unbind "$address" --restore
expect_eq "driver of edu-uio after unbind --restore" "$(driver_of "$address")" none
check_pass
