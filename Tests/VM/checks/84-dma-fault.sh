#!/bin/sh
# Check: a DMA to an unmapped IOVA is caught by the IOMMU as a fault, reported in the guest's
# kernel log as a DMAR fault from edu0, and does not hang the driver: the run ends within the
# timeout with its fault step checked.
#
# `vfiokit selftest --driver edu`'s "iommu fault" step frees a mapped IOVA, has edu DMA to it, and
# checks the framework reads the fault back from the kernel log.
# configs: iommu
# timeout: 180
address=$(dev edu0)
short=${address#0000:}
fault_run() { vfiokit selftest --driver edu "$address" --backend legacy; }

expect vfiokit bind "$address"
dmesg_mark
expect fault_run
expect_steps "iommu fault"
dmesg_since_mark >"$out"
cat "$out"
grep -q "DMAR:.*\[$short\] fault addr" "$out" ||
  check_fail "the kernel logged no DMAR fault from $short during the run"
expect vfiokit unbind "$address" --restore
check_pass
