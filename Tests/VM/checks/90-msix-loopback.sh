#!/bin/sh
# Check: MSI-X on real devices. `vfiokit selftest --driver msix-loopback ADDRESS` arms every MSI-X
# vector with an eventfd through the framework (half, then growing to all while enabled where
# VFIO_IRQ_INFO_NORESIZE is clear, i.e. the kernel offers dynamic MSI-X; else all at once), fires
# each with VFIO_DEVICE_SET_IRQS ACTION_TRIGGER|DATA_NONE, and receives every one exactly once
# through VFIOKit's event loop. On QEMU's NVMe (65 vectors) and e1000e (5).
# configs: iommu distro
for entry in nvme:65 e1000e:5; do
  role=${entry%:*} vectors=${entry#*:}
  address=$(dev "$role")
  expect vfiokit bind "$address"
  expect vfiokit selftest --driver msix-loopback "$address"
  expect_steps "msix info" arm "fire and receive"
  grep -q "^ok   fire and receive: each of $vectors vectors" "$out" ||
    check_fail "not every MSI-X vector of $role was fired and received"
  expect vfiokit unbind "$address" --restore
done
check_pass
