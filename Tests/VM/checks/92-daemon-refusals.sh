#!/bin/sh
# Check: a second daemon on a device the first one holds is refused, naming the first's pid;
# after the first is killed with SIGKILL, `vfiokit status` says no daemon runs and that bindings
# were left, and the next `vfiokit run` finds its journal and gives edu0 back before starting.
# configs: iommu
# timeout: 180
need_tool jq
edu0=$(dev edu0)
export VFIOKIT_STATE_DIR=/tmp/check/state

vfiokit run "$edu0" --bind --stats-interval 0 >/tmp/check/first.out 2>/tmp/check/first.err &
first=$!
# jq 1.6 -e exits 0 on empty input (no daemon yet), so the answer itself is checked.
answers() { [ "$(vfiokit status --json 2>/dev/null | jq -r '.devices[0].state')" = running ]; }
wait_for 60 answers || { kill -KILL "$first"; cat /tmp/check/first.err; check_fail "the first daemon never reported edu0 running"; }

# Another state directory, so only the kernel's refusal of a second open stands in the way.
expect_refused env VFIOKIT_STATE_DIR=/tmp/check/other vfiokit run "$edu0" --stats-interval 0
grep -q "$edu0 is in use by pid $first (vfiokit)" "$err" || {
  cat /tmp/check/first.err
  kill -KILL "$first"
  check_fail "the refusal does not name the holder's pid $first"
}
# The same state directory: the daemon lock names it too.
expect_refused vfiokit run "$edu0" --stats-interval 0
grep -q "another vfiokit daemon (pid $first) is running" "$err" || { kill -KILL "$first"; check_fail "the lock refusal does not name pid $first"; }

kill -KILL "$first"
wait "$first"
expect_eq "driver of edu0 after SIGKILL" "$(driver_of "$edu0")" vfio-pci
expect_refused vfiokit status
grep -q "no vfiokit daemon is running" "$err" || check_fail "status does not say that no daemon runs"
grep -q "a daemon was killed leaving devices bound" "$err" || check_fail "status does not mention the bindings left behind"

vfiokit run "$edu0" --bind --stats-interval 0 >/tmp/check/next.out 2>/tmp/check/next.err &
next=$!
wait_for 60 answers || { kill -KILL "$next"; cat /tmp/check/next.err; check_fail "the next daemon never reported edu0 running"; }
kill -TERM "$next"
wait "$next"
cat /tmp/check/next.err
grep -q "a previous daemon (pid $first) stopped without restoring 1 devices" /tmp/check/next.err ||
  check_fail "the next daemon did not find the killed one's journal"
grep -q "recovered $edu0: restored to no driver" /tmp/check/next.err || check_fail "the next daemon did not restore edu0 first"
expect_eq "driver of edu0 at the end" "$(driver_of "$edu0")" "$(initial_driver edu0)"
check_pass
