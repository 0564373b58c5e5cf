#!/bin/sh
# Check: IMS through the real kernel's IOMMU on the VFIO device cdev bound to iommufd:
# `vfiokit run --driver edu-ims ADDRESS --backend iommufd` builds a domain of 4096 slots whose message writes are edu
# DMAs into the status area and whose doorbell is edu's MSI, fires 64 slots in random order
# (each delivered once to its own handler), holds masked slots until unmask, refuses a message
# for the MSI window, and catches a message to an unmapped IOVA as a DMAR fault.
# configs: iommu
# timeout: 240
address=$(dev edu0)
short=${address#0000:}
ims_run() { vfiokit run --driver edu-ims "$address" --backend iommufd; }

expect vfiokit bind "$address"
dmesg_mark
expect ims_run
expect_steps domain load "random slots" "masked slots" "msi window refused" "unmapped iova"
dmesg_since_mark >"$out"
grep -q "DMAR:.*\[$short\] fault addr" "$out" ||
  check_fail "the kernel logged no DMAR fault from $short for the stray message write"
expect vfiokit unbind "$address" --restore
check_pass
