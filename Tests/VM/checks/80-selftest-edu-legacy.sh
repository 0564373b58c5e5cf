#!/bin/sh
# Check: the edu sample driver runs to the end on the legacy VFIO container and group with the
# type1 IOMMU (/dev/vfio/vfio, /dev/vfio/GROUP): `vfiokit selftest --driver edu ADDRESS --backend
# legacy` exits 0 only if every step checked out.
# configs: iommu distro
address=$(dev edu0)
expect vfiokit bind "$address"
[ -c "/dev/vfio/$(group_of "$address")" ] || check_fail "no group node for edu0 after bind"
expect vfiokit selftest --driver edu "$address" --backend legacy
expect_steps identification liveness factorial "interrupt raise/ack" "dma round trip" "iommu fault" "stale view"
grep -q "^ok   stale view: after close, BAR 0 (mapped)" "$out" || check_fail "BAR 0 was not mapped, so the stale mapped view was not checked"
expect vfiokit unbind "$address" --restore
check_pass
