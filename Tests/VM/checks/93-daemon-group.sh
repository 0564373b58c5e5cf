#!/bin/sh
# Check: the daemon hosts both functions behind the PCI bridge, which share one IOMMU group, in
# one IOMMU context: `vfiokit run --config` with `bind` binds the edu and the e1000 (the e1000
# driver lets go of its function), runs edu on one and the stub driver on the other, and
# `vfiokit status --json` shows both running in the same context, named for the group, with
# the edu's interrupts counted. SIGTERM gives both their boot drivers back.
# configs: iommu
# timeout: 180
need_tool jq
edu=$(dev bridge-edu) nic=$(dev bridge-nic)
group=$(group_of "$edu")
expect_eq "bridge-nic's group" "$(group_of "$nic")" "$group"
export VFIOKIT_STATE_DIR=/tmp/check/state
cat >/tmp/check/daemon.json <<JSON
{ "bind": true,
  "devices": [
    { "address": "$edu", "driver": "edu" },
    { "address": "$nic", "driver": "stub" } ] }
JSON

daemon_start --config /tmp/check/daemon.json
counted() { [ "$(device_interrupts "$edu")" -gt 0 ]; }

wait_for 60 counted || { daemon_stop; check_fail "status shows no interrupts from the edu behind the bridge"; }
expect vfiokit status --json
cat "$out"
for a in "$edu" "$nic"; do
  expect_eq "state of $a" "$(device_field "$a" state)" running
  expect_eq "context of $a" "$(device_field "$a" context)" "group $group"
done
expect_eq "driver of the e1000 function" "$(device_field "$nic" driver)" stub
expect_eq "driver of bridge-nic under the daemon" "$(driver_of "$nic")" vfio-pci

daemon_stop >"$out" 2>&1
cat "$out"
grep -q "daemon exit status 0" "$out" || check_fail "the daemon did not exit 0 on SIGTERM"
for role in bridge-edu bridge-nic; do
  expect_eq "driver of $role after SIGTERM" "$(driver_of "$(dev "$role")")" "$(initial_driver "$role")"
done
[ -z "$(vfio_fds)" ] || check_fail "VFIO files still open: $(vfio_fds)"
check_pass
