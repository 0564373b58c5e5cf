#!/bin/sh
# Check: process isolation. `vfiokit run --config` with `bind` and `isolate` hosts edu0 and
# edu-uio (two IOMMU groups, so two worker processes); VFIOKIT_FAULT_TRAP names edu-uio, whose
# worker traps on its first interrupt. The kernel releases edu-uio as that worker dies (no
# process holds its VFIO files), `vfiokit status` shows it failed with the signal, edu0's
# interrupt count keeps rising, and SIGTERM stops the other worker, gives both devices their
# boot drivers back and exits 0. Before that, hot removal and addition reach edu0 in its worker:
# `echo 1 > .../remove` completes (the worker honoured REQ), and the rescan's udev add event,
# which the supervisor passes on, has the worker attach edu0 again.
# configs: iommu
# timeout: 240
need_tool jq
edu0=$(dev edu0) edu1=$(dev edu-uio)
export VFIOKIT_STATE_DIR=/tmp/check/state
cat >/tmp/check/daemon.json <<JSON
{ "bind": true, "isolate": true,
  "devices": [ { "address": "$edu0", "driver": "edu" }, { "address": "$edu1", "driver": "edu" } ] }
JSON

# The Swift runtime's backtracer is not in the guest; the trap's message is enough here.
export VFIOKIT_FAULT_TRAP=$edu1 SWIFT_BACKTRACE=enable=no
daemon_start --config /tmp/check/daemon.json
failed() { [ "$(device_field "$edu1" state)" = failed ]; }
# The live worker processes, by pid.
workers() {
  for cmdline in /proc/[0-9]*/cmdline; do
    { tr '\0' ' ' <"$cmdline"; } 2>/dev/null | grep -q "[v]fiokit worker " && basename "$(dirname "$cmdline")"
  done
}
counted() { [ "$(device_interrupts "$edu0")" -gt 0 ]; }

wait_for 60 failed || { daemon_stop; check_fail "status never showed edu-uio failed"; }
wait_for 60 counted || { daemon_stop; check_fail "status shows no interrupts from edu0"; }
expect vfiokit status
cat "$out"
grep -q "$edu1  edu  failed: driver edu on $edu1 trapped (SIGILL); its process ended and the kernel released the device" "$out" ||
  { daemon_stop; check_fail "status does not show edu-uio's trap with its signal"; }
grep -q "error vfiokit.daemon: .*driver edu on $edu1 trapped (SIGILL)" /tmp/check/daemon.err ||
  { daemon_stop; check_fail "the supervisor did not log the trap"; }
expect_eq "state of edu0" "$(device_field "$edu0" state)" running
[ "$(device_field "$edu0" context)" != "$(device_field "$edu1" context)" ] || { daemon_stop; check_fail "the two edus share a context"; }

# The kernel released edu-uio: no process holds its group or its device cdev.
cdev=$(ls "$(sysfs "$edu1")/vfio-dev" 2>/dev/null)
held=$(vfio_fds | grep -E -- "-> (/dev/vfio/$(group_of "$edu1")|/dev/vfio/devices/${cdev:-none})\$")
[ -z "$held" ] || { daemon_stop; check_fail "edu-uio is still held after its worker died: $held"; }

expect_eq "worker processes after the trap" "$(workers | wc -l)" 1

before=$(device_interrupts "$edu0")
more() { [ "$(device_interrupts "$edu0")" -gt "$((before + 5))" ]; }
wait_for 30 more || { daemon_stop; check_fail "edu0's interrupts stopped rising after edu-uio's worker trapped"; }

(echo 1 >"$(sysfs "$edu0")/remove") &
remover=$!
wait_for 60 test ! -e "$(sysfs "$edu0")" || { daemon_stop; check_fail "removing edu0 did not complete: its worker did not honour REQ"; }
wait "$remover"
expect_eq "state of edu0 after its removal" "$(device_field "$edu0" state)" removed
echo 1 >/sys/bus/pci/rescan
wait_for 30 test -e "$(sysfs "$edu0")" || { daemon_stop; check_fail "edu0 did not come back on rescan"; }
back() { [ "$(device_field "$edu0" state)" = running ] && [ "$(device_interrupts "$edu0")" -gt 0 ]; }
wait_for 60 back || { daemon_stop; check_fail "edu0 was not attached again after its udev add event"; }

daemon_stop >"$out" 2>&1
cat "$out"
grep -q "daemon exit status 0" "$out" || check_fail "the daemon did not exit 0 on SIGTERM"
for role in edu0 edu-uio; do
  expect_eq "driver of $role after SIGTERM" "$(driver_of "$(dev "$role")")" "$(initial_driver "$role")"
done
[ -z "$(vfio_fds)" ] || check_fail "VFIO files still open: $(vfio_fds)"
[ -z "$(workers)" ] || check_fail "worker processes outlived the daemon: $(workers)"
[ ! -e /tmp/check/state/daemon-bindings.json ] || check_fail "the bindings journal outlived a clean shutdown"
check_pass
