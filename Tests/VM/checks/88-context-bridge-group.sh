#!/bin/sh
# Check: both functions behind the PCI bridge, which share one IOMMU group, open in one process
# through one IOMMU context on the legacy backend (the group is opened once; a second open of the
# group would be EBUSY): `vfiokit context EDU NIC --backend legacy`.
# configs: iommu distro
edu=$(dev bridge-edu) nic=$(dev bridge-nic)
expect_eq "bridge-edu's group" "$(group_of "$edu")" "$(group_of "$nic")"
expect vfiokit bind "$edu" --whole-group
expect vfiokit context "$edu" "$nic" --backend legacy
expect_steps "one context"
grep -qF "in one vfio_type1v2_iommu context" "$out" || check_fail "the context is not type1v2: $(grep 'one context' "$out")"
expect vfiokit unbind "$edu" --restore
expect vfiokit unbind "$nic" --restore
expect_eq "driver of bridge-nic after unbind --restore" "$(driver_of "$nic")" e1000
check_pass
