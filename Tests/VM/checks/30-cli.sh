#!/bin/sh
# Check: the vfiokit binary and the shared libraries copied with it run on this kernel.
# configs: iommu noiommu distro
expect vfiokit --help
grep -q 'USAGE: vfiokit' "$out" || check_fail "vfiokit --help printed no 'USAGE: vfiokit' line"
check_pass
