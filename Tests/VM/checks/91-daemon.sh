#!/bin/sh
# Check: the driver daemon on the real kernel. `vfiokit run --config` binds two edu devices and
# the e1000e, runs the edu driver on both edus and msix-loopback on the e1000e together, and
# `vfiokit status --json` reports interrupts from each. `echo 1 > .../remove` on edu0 completes
# (the daemon honoured VFIO's REQ and released it) while the others keep running; a rescan brings
# edu0 back and the udev add event has the daemon attach it again. SIGTERM stops the daemon,
# which gives every device its boot driver back.
# configs: iommu
# timeout: 240
need_tool jq
edu0=$(dev edu0) edu1=$(dev edu-uio) nic=$(dev e1000e)
state=/tmp/check/state
export VFIOKIT_STATE_DIR=$state
cat >/tmp/check/daemon.json <<JSON
{ "bind": true,
  "devices": [
    { "address": "$edu0", "driver": "edu" },
    { "address": "$edu1" },
    { "address": "$nic", "driver": "msix-loopback" } ] }
JSON

daemon_start --config /tmp/check/daemon.json
operations() { device_field "$1" operations; }
state_of() { device_field "$1" state; }
counted() { [ "$(device_interrupts "$1")" -gt 0 ]; }

for a in "$edu0" "$edu1" "$nic"; do
  wait_for 60 counted "$a" || { daemon_stop; check_fail "status shows no interrupts from $a"; }
done
expect vfiokit status
cat "$out"
grep -q "$nic  msix-loopback  running" "$out" || { daemon_stop; check_fail "the e1000e does not run msix-loopback"; }
grep -q "$edu1  edu  running" "$out" || { daemon_stop; check_fail "edu-uio did not get the edu driver by match"; }

# Hot removal: vfio-pci sends REQ and waits until the daemon lets go.
(echo 1 >"$(sysfs "$edu0")/remove") &
remover=$!
wait_for 60 test ! -e "$(sysfs "$edu0")" || { daemon_stop; check_fail "removing edu0 did not complete: the REQ was not honoured"; }
wait "$remover"
expect_eq "state of edu0 after its removal" "$(state_of "$edu0")" removed
before=$(operations "$edu1")
more() { [ "$(operations "$edu1")" -gt "$((before + 5))" ]; }
wait_for 30 more || { daemon_stop; check_fail "edu-uio stopped working when edu0 was removed"; }
expect_eq "state of the e1000e" "$(state_of "$nic")" running

# Hot addition: the rescan's udev add event is for a device in the config, so it is attached again.
echo 1 >/sys/bus/pci/rescan
wait_for 30 test -e "$(sysfs "$edu0")" || { daemon_stop; check_fail "edu0 did not come back on rescan"; }
running() { [ "$(state_of "$edu0")" = running ] && counted "$edu0"; }
wait_for 60 running || { daemon_stop; check_fail "the daemon did not attach edu0 again after its udev add event"; }

daemon_stop >"$out" 2>&1
cat "$out"
grep -q "daemon exit status 0" "$out" || check_fail "the daemon did not exit 0 on SIGTERM"
for role in edu0 edu-uio e1000e; do
  expect_eq "driver of $role after SIGTERM" "$(driver_of "$(dev "$role")")" "$(initial_driver "$role")"
done
[ -z "$(vfio_fds)" ] || check_fail "VFIO files still open: $(vfio_fds)"
[ ! -e "$state/daemon-bindings.json" ] || check_fail "the bindings journal outlived a clean shutdown"
check_pass
