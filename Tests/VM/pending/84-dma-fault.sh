#!/bin/sh
# Check: a DMA to an unmapped IOVA is caught by the IOMMU as a fault, reported in the guest's
# kernel log as a DMAR fault from edu0, and does not hang the driver: the run ends within the
# timeout with its fault step checked.
#
# Assumes `vfiokit run --driver edu` includes a step that starts an edu DMA to an IOVA it never
# mapped and checks that the transfer does not complete. If that step lands behind a flag, add it
# to `fault_run` below.
# configs: iommu
# timeout: 180
address=$(dev edu0)
short=${address#0000:}
fault_run() { vfiokit run --driver edu "$address" --backend legacy; }

expect vfiokit bind "$address"
dmesg_mark
expect fault_run
dmesg_since_mark >"$out"
cat "$out"
grep -q "DMAR:.*\[$short\] fault addr" "$out" ||
  check_fail "the kernel logged no DMAR fault from $short during the run"
expect vfiokit unbind "$address" --restore
check_pass
