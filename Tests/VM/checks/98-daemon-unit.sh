#!/bin/sh
# Check: the daemon as systemd/vfiokit.service runs it, on a guest without systemd: an unprivileged
# user in group vfio (DynamicUser=yes, Group=vfio; the device nodes are the group's, as
# udev-rules/70-vfiokit.rules makes them), its runtime directory made 0750 for it
# (RuntimeDirectory=vfiokit/daemon), UMask=0007, LimitMEMLOCK=infinity and the unit's
# Environment=VFIOKIT_STATE_DIR=/run/vfiokit/daemon, on a device bound to vfio-pci beforehand
# (the unit does not bind). From a root shell with no VFIOKIT_STATE_DIR, `vfiokit status` finds
# it and a hand-started `vfiokit run` is refused naming its pid; SIGTERM stops it cleanly.
# configs: iommu
# timeout: 240
need_tool jq
edu0=$(dev edu0)
uid=61000 gid=61000
unset VFIOKIT_STATE_DIR

expect vfiokit bind "$edu0"
# The service's user and group, and the nodes udev would give the group.
mkdir -p /etc
cp /etc/passwd /tmp/check/passwd.saved 2>/dev/null; cp /etc/group /tmp/check/group.saved 2>/dev/null
echo "vfiokit-unit:x:$uid:$gid::/tmp:/bin/sh" >>/etc/passwd
echo "vfio:x:$gid:" >>/etc/group
restore_accounts() {
  if [ -f /tmp/check/passwd.saved ]; then cp /tmp/check/passwd.saved /etc/passwd; else rm -f /etc/passwd; fi
  if [ -f /tmp/check/group.saved ]; then cp /tmp/check/group.saved /etc/group; else rm -f /etc/group; fi
}
for node in /dev/vfio/vfio /dev/vfio/[0-9]* /dev/vfio/devices/* /dev/iommu; do
  [ -e "$node" ] && chgrp "$gid" "$node" && chmod 0660 "$node"
done
mkdir -p /run/vfiokit/daemon
chown "$uid:$gid" /run/vfiokit/daemon
chmod 0750 /run/vfiokit/daemon

ulimit -l unlimited
su -s /bin/sh vfiokit-unit -c "umask 0007; export VFIOKIT_STATE_DIR=/run/vfiokit/daemon; exec vfiokit run $edu0 --driver edu --stats-interval 0" \
  >/tmp/check/daemon.out 2>/tmp/check/daemon.err &
# busybox su and the shell exec, so the job is the daemon itself.
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null; wait "$pid"; cat /tmp/check/daemon.err; restore_accounts; vfiokit unbind "$edu0" --restore; }

answers() { [ "$(vfiokit status --json 2>/dev/null | jq -r '.devices[0].state')" = running ]; }
wait_for 20 answers || { stop; check_fail "root's vfiokit status did not find the unit's daemon running $edu0"; }
expect_eq "the lock's pid" "$(cat /run/vfiokit/daemon/daemon.lock)" "$pid"
expect_eq "the daemon's user" "$(awk '/^Uid:/ { print $2 }' /proc/"$pid"/status)" "$uid"
expect_eq "the status socket's mode and group" "$(stat -c '%a %g' /run/vfiokit/daemon/vfiokit.sock)" "660 $gid"
expect vfiokit status
grep -q "$edu0  edu  running" "$out" || { stop; check_fail "status text does not show $edu0 running"; }

expect_refused vfiokit run "$edu0" --stats-interval 0
grep -q "another vfiokit daemon (pid $pid) is running" "$err" || { stop; check_fail "a hand-started run was not refused naming pid $pid: $(cat "$err")"; }
! grep -q SIMULATED "$err" || { stop; check_fail "the refused run printed a banner"; }

kill -TERM "$pid"
wait "$pid"
cat /tmp/check/daemon.err
restore_accounts
grep -q "shut down; released $edu0" /tmp/check/daemon.err || check_fail "the daemon did not log its shutdown at notice"
expect_refused vfiokit status
grep -q "no vfiokit daemon is running" "$err" || check_fail "status after SIGTERM does not say no daemon runs"
expect vfiokit unbind "$edu0" --restore
expect_eq "driver of edu0 at the end" "$(driver_of "$edu0")" "$(initial_driver edu0)"
check_pass
