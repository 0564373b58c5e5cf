#!/bin/sh
# Check: the daemon's ublk export on QEMU's NVMe. `vfiokit run ADDRESS --bind --export ublk`
# prints its block device, which has the namespace's size; 4 MiB written to it with O_DIRECT and
# read back are equal, and equal to what the kernel's nvme driver reads after the daemon stops;
# `vfiokit status --json` counts the export's reads and writes in bytes (at least the 4 MiB each
# way), with the kernel as its one client and nothing in flight. SIGTERM removes the block device
# and gives the NVMe back to the kernel.
# configs: iommu
# timeout: 240
need_tool jq
address=$(dev nvme)
[ -e /dev/ublk-control ] || check_fail "no /dev/ublk-control: the guest kernel lacks CONFIG_BLK_DEV_UBLK"
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
sectors=$(cat /sys/block/nvme0n1/size)
export VFIOKIT_STATE_DIR=/tmp/check/state
export_field() {
  vfiokit status --json 2>/dev/null | jq -r --arg a "$address" --arg f "$1" '.devices[] | select(.address == $a) | .exports[0].detail[$f]'
}

daemon_start "$address" --bind --export ublk
wait_for 60 grep -q "^export ublk namespace 1 of $address: /dev/ublkb" /tmp/check/daemon.out ||
  { daemon_stop; check_fail "the daemon printed no ublk export for $address"; }
bdev=$(sed -n "s|^export ublk namespace 1 of $address: \(/dev/ublkb[0-9]*\)$|\1|p" /tmp/check/daemon.out)
wait_for 10 test -b "$bdev" || { daemon_stop; check_fail "$bdev was announced but does not exist"; }
expect_eq "ublk size in sectors" "$(cat "/sys/block/${bdev#/dev/}/size")" "$sectors"
expect dd if=/dev/urandom of=/tmp/check/data bs=1M count=4
expect dd if=/tmp/check/data of="$bdev" bs=1M seek=1 oflag=direct
expect dd if="$bdev" of=/tmp/check/back bs=1M skip=1 count=4 iflag=direct
cmp -s /tmp/check/data /tmp/check/back || { daemon_stop; check_fail "4 MiB read back through ublk differ from what was written"; }
written=$(export_field bytesWritten) read=$(export_field bytesRead)
clients=$(export_field clients) inflight=$(export_field inFlight)
vfiokit status
[ "$written" -ge 4194304 ] || { daemon_stop; check_fail "status counts $written bytes written through ublk, expected at least 4194304"; }
[ "$read" -ge 4194304 ] || { daemon_stop; check_fail "status counts $read bytes read through ublk, expected at least 4194304"; }
expect_eq "ublk export clients" "$clients" 1
expect_eq "ublk export requests in flight" "$inflight" 0
kill -TERM "$daemon"
wait "$daemon"
status=$?
cat /tmp/check/daemon.out /tmp/check/daemon.err
[ "$status" -eq 0 ] || check_fail "the daemon exited with status $status on SIGTERM"
[ ! -e "$bdev" ] || check_fail "$bdev outlived the daemon's orderly stop"
wait_for 20 test -b /dev/nvme0n1 || check_fail "the nvme driver made no /dev/nvme0n1 after the daemon stopped"
expect dd if=/dev/nvme0n1 of=/tmp/check/kernel bs=1M skip=1 count=4 iflag=direct
cmp -s /tmp/check/data /tmp/check/kernel || check_fail "the kernel's nvme driver reads other data than was written through the daemon's ublk export"
check_pass "the daemon's ublk export: size equal to the kernel's, 4 MiB written and read back (and read back by the kernel's nvme driver), status counts $written bytes written and $read read with the kernel as its one client"
