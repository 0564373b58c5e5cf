#!/bin/sh
# Check: the daemon's NBD export with the kernel's own NBD client, and the kernel's nvme driver as
# the oracle. `vfiokit run ADDRESS --bind --export nbd:SOCKET` serves QEMU's NVMe namespace;
# `nbd-client -u SOCKET /dev/nbd0` attaches it; its size and block size equal /dev/nvme0n1's;
# mkfs.ext4, mount, a tree of files with known checksums, sync, unmount, disconnect, SIGTERM (the
# daemon gives the device back to nvme). The kernel's nvme driver then mounts /dev/nvme0n1, finds
# every checksum, and `e2fsck -fn` is clean. The reverse: files the kernel wrote are read back
# through NBD with equal checksums.
# configs: iommu
# timeout: 300
need_tool mkfs.ext4
need_tool e2fsck
need_tool nbd-client
address=$(dev nvme)
[ -b /dev/nbd0 ] || check_fail "no /dev/nbd0: the guest kernel lacks CONFIG_BLK_DEV_NBD"
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
sectors=$(cat /sys/block/nvme0n1/size)
lbs=$(cat /sys/block/nvme0n1/queue/logical_block_size)
socket=/tmp/check/nbd.sock
export VFIOKIT_STATE_DIR=/tmp/check/state
mkdir -p /mnt/x

# Serves the namespace through the daemon and attaches /dev/nbd0 to it.
nbd_attach() {
  rm -f "$socket"
  daemon_start "$address" --bind --export "nbd:$socket"
  wait_for 60 grep -q "^export nbd namespace 1 of $address: nbd+unix:///?socket=$socket" /tmp/check/daemon.out ||
    { daemon_stop; check_fail "the daemon printed no NBD export for $address"; }
  expect nbd-client -u "$socket" /dev/nbd0 -b "$lbs"
  wait_for 10 test "$(cat /sys/block/nbd0/size)" -gt 0 || { daemon_stop; check_fail "/dev/nbd0 has no size after nbd-client"; }
}

# Disconnects /dev/nbd0 and stops the daemon, which must exit 0 and give the device back to nvme.
nbd_detach() {
  expect nbd-client -d /dev/nbd0
  kill -TERM "$daemon"
  wait "$daemon"
  local status=$?
  cat /tmp/check/daemon.out /tmp/check/daemon.err
  [ "$status" -eq 0 ] || check_fail "the daemon exited with status $status on SIGTERM"
  wait_for 20 test -b /dev/nvme0n1 || check_fail "the nvme driver made no /dev/nvme0n1 after the daemon stopped"
}

# vfiokit → kernel.
nbd_attach
expect_eq "nbd size in sectors" "$(cat /sys/block/nbd0/size)" "$sectors"
expect_eq "nbd logical block size" "$(cat /sys/block/nbd0/queue/logical_block_size)" "$lbs"
expect mkfs.ext4 -q -F /dev/nbd0
expect mount -t ext4 /dev/nbd0 /mnt/x
tree_write /mnt/x/one /tmp/check/one.sums
sync
expect umount /mnt/x
nbd_detach
expect mount -t ext4 /dev/nvme0n1 /mnt/x
tree_check /mnt/x/one /tmp/check/one.sums "the kernel read a file vfiokit wrote through NBD differently"

# kernel → vfiokit.
tree_write /mnt/x/two /tmp/check/two.sums
sync
expect umount /mnt/x
expect e2fsck -fn /dev/nvme0n1
nbd_attach
expect mount -t ext4 -o ro /dev/nbd0 /mnt/x
tree_check /mnt/x/two /tmp/check/two.sums "NBD read a file the kernel wrote differently"
tree_check /mnt/x/one /tmp/check/one.sums "NBD read a file it wrote earlier differently"
expect umount /mnt/x
expect e2fsck -fn /dev/nbd0
nbd_detach
check_pass "the daemon's NBD export with the kernel's nbd client: ext4 made through it read back by the kernel's nvme driver, fsck clean; the kernel's files read back through it; size and block size equal the kernel's"
