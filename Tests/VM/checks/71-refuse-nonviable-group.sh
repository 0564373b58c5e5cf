#!/bin/sh
# Check: binding one device of a group whose other member is bound to a host driver is refused,
# naming that member (the bridge pair: bridge-edu shares a group with bridge-nic, which e1000
# drives); --whole-group binds every member vfio-pci can take (not the bridge itself, which stays
# driverless), and unbind --restore gives bridge-nic back to e1000.
# configs: iommu distro
edu=$(dev bridge-edu) nic=$(dev bridge-nic)
expect_eq "bridge-edu's group" "$(group_of "$edu")" "$(group_of "$nic")"
expect_refused vfiokit bind "$edu"
grep -qF "$nic" "$err" || check_fail "the refusal does not name $nic, the group member bound to e1000"
expect_eq "driver of bridge-edu after the refusal" "$(driver_of "$edu")" none
expect_eq "driver of bridge-nic after the refusal" "$(driver_of "$nic")" e1000

expect vfiokit bind "$edu" --whole-group
expect_eq "driver of bridge-edu after --whole-group" "$(driver_of "$edu")" vfio-pci
expect_eq "driver of bridge-nic after --whole-group" "$(driver_of "$nic")" vfio-pci
expect_eq "driver of the bridge after --whole-group" "$(driver_of "$(dev bridge)")" none
[ -c "/dev/vfio/$(group_of "$edu")" ] || check_fail "no /dev/vfio/$(group_of "$edu") after --whole-group"
expect vfiokit unbind "$edu" --restore
expect vfiokit unbind "$nic" --restore
expect_eq "driver of bridge-nic after unbind --restore" "$(driver_of "$nic")" e1000
expect_eq "driver of bridge-edu after unbind --restore" "$(driver_of "$edu")" none
check_pass
