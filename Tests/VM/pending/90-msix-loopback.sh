#!/bin/sh
# PROPOSAL (the command is not specified yet): MSI-X on real devices.
# `vfiokit run --driver msix-loopback ADDRESS` would arm every MSI-X vector of the device with an
# eventfd (growing the set one vector at a time where VFIO_IRQ_INFO_NORESIZE is clear, that is
# where the kernel allows dynamic MSI-X, else all at once), fire each vector from userspace with
# VFIO_DEVICE_SET_IRQS ACTION_TRIGGER|DATA_NONE, receive every one exactly once through VFIOKit's
# event loop, disarm, and exit 0 only if all did. Here on QEMU's NVMe (65 vectors) and e1000e (5).
# configs: iommu distro
for role in nvme e1000e; do
  address=$(dev "$role")
  expect vfiokit bind "$address"
  expect vfiokit run --driver msix-loopback "$address"
  expect vfiokit unbind "$address" --restore
done
check_pass
