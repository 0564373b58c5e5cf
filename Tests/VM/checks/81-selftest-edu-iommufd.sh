#!/bin/sh
# Check: the edu sample driver runs to the end on the VFIO device cdev (/dev/vfio/devices/vfioN)
# bound to iommufd (/dev/iommu): `vfiokit selftest --driver edu ADDRESS --backend iommufd` exits 0
# only if every step checked out.
# configs: iommu
address=$(dev edu0)
expect vfiokit bind "$address"
cdev=$(ls "$(sysfs "$address")/vfio-dev" 2>/dev/null)
[ -n "$cdev" ] && [ -c "/dev/vfio/devices/$cdev" ] || check_fail "no device cdev for edu0 after bind"
expect vfiokit selftest --driver edu "$address" --backend iommufd
expect_steps identification liveness factorial "interrupt raise/ack" "dma round trip" "iommu fault" "stale view"
grep -q "^ok   stale view: after close, BAR 0 (mapped) read 0xffffffff; a write of 0x5a5a0000 through it landed in private memory (read back 0x5a5a0000); region closed" "$out" || check_fail "BAR 0 was not mapped, or its stale view did not read all ones and keep a stale write in private memory"
expect vfiokit unbind "$address" --restore
check_pass
