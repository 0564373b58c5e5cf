#!/bin/sh
# Check: the conformance scenarios (kernel VFIO selftests, DPDK/SPDK pitfalls) give the same
# answers on this kernel as on the mock set up like it: `vfiokit conformance` runs both and
# fails on any difference, printing it side by side. Uses edu0, the bridge's edu (a group e1000
# also holds) and NVMe for MSI-X, read-only.
# configs: iommu distro
# timeout: 600
edu=$(dev edu0)
nvme=$(dev nvme)
shared=$(dev bridge-edu)
sysfs_bind "$edu" vfio-pci
sysfs_bind "$nvme" vfio-pci
sysfs_bind "$shared" vfio-pci
run vfiokit conformance --edu "$edu" --msix "$nvme" --non-viable "$shared" --json
status=$?
sysfs_restore "$shared"
sysfs_restore "$nvme"
sysfs_restore "$edu"
summary=$(grep '^conformance: ' "$out")
[ -n "$summary" ] || check_fail "vfiokit conformance printed no summary (exit status $status)"
[ "$status" -eq 0 ] || check_fail "$summary"
check_pass "$summary"
