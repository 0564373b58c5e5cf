#!/bin/sh
# Check: ublk with the kernel as the oracle, on QEMU's NVMe, once with the device bound to the
# legacy type1 container (queues polled) and once to iommufd (completions by MSI-X, --interrupts).
# Each pass: `vfiokit nvme ublk` serves the namespace as /dev/ublkbN with the kernel's own view of
# the controller (logical block size, size, largest request from MDTS, write cache, FUA, discard
# and write-zeroes support all equal /dev/nvme0n1's; a discard through ublk succeeds); mkfs.ext4
# (which discards the device and zeroes its journal), mount, a tree of files with known
# checksums, sync, unmount, SIGTERM (the server stops in order and the block device goes away).
# The kernel's nvme driver then mounts /dev/nvme0n1, finds every checksum, and `e2fsck -fn` is
# clean. The reverse: files the kernel wrote are read back through ublk with equal checksums, and
# `e2fsck -fn` through ublk is clean.
# configs: iommu
# timeout: 300
need_tool mkfs.ext4
need_tool e2fsck
address=$(dev nvme)
[ -e /dev/ublk-control ] || check_fail "no /dev/ublk-control: the guest kernel lacks CONFIG_BLK_DEV_UBLK"
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
kernel_queue() { cat "/sys/block/nvme0n1/queue/$1"; }
lbs=$(kernel_queue logical_block_size)
sectors=$(cat /sys/block/nvme0n1/size)
max_kb=$(kernel_queue max_hw_sectors_kb)
cache=$(kernel_queue write_cache)
fua=$(kernel_queue fua)
has() { if [ "$(cat "$1")" -gt 0 ]; then echo yes; else echo no; fi; }
discard=$(has /sys/block/nvme0n1/queue/discard_max_hw_bytes)
zeroes=$(has /sys/block/nvme0n1/queue/write_zeroes_max_bytes)
mkdir -p /mnt/x

for pass in legacy: iommufd:--interrupts; do
  mode=${pass%%:*}
  options=${pass#*:}
  # vfiokit → kernel.
  expect vfiokit bind "$address"
  # shellcheck disable=SC2086
  ublk_start "$mode" $options
  q=/sys/block/${bdev#/dev/}/queue
  expect_eq "$mode: ublk logical block size" "$(cat $q/logical_block_size)" "$lbs"
  expect_eq "$mode: ublk size in sectors" "$(cat /sys/block/${bdev#/dev/}/size)" "$sectors"
  expect_eq "$mode: ublk largest request (MDTS) in KiB" "$(cat $q/max_hw_sectors_kb)" "$max_kb"
  expect_eq "$mode: ublk write cache" "$(cat $q/write_cache)" "$cache"
  expect_eq "$mode: ublk FUA" "$(cat $q/fua)" "$fua"
  expect_eq "$mode: ublk discards (Dataset Management)" "$(has $q/discard_max_hw_bytes)" "$discard"
  expect_eq "$mode: ublk writes zeroes (Write Zeroes)" "$(has $q/write_zeroes_max_bytes)" "$zeroes"
  [ "$discard" = no ] || expect blkdiscard -o 1048576 -l 4194304 "$bdev"
  expect mkfs.ext4 -q -F "$bdev"
  expect mount -t ext4 "$bdev" /mnt/x
  tree_write "/mnt/x/one-$mode" "/tmp/check/one-$mode.sums"
  sync
  expect umount /mnt/x
  ublk_stop
  expect vfiokit unbind "$address" --restore
  wait_for 20 test -b /dev/nvme0n1 || check_fail "the nvme driver made no /dev/nvme0n1 after the restore"
  expect mount -t ext4 /dev/nvme0n1 /mnt/x
  tree_check "/mnt/x/one-$mode" "/tmp/check/one-$mode.sums" "$mode: the kernel read a file vfiokit wrote through ublk differently"

  # kernel → vfiokit.
  tree_write "/mnt/x/two-$mode" "/tmp/check/two-$mode.sums"
  sync
  expect umount /mnt/x
  expect e2fsck -fn /dev/nvme0n1
  expect vfiokit bind "$address"
  # shellcheck disable=SC2086
  ublk_start "$mode" $options
  expect mount -t ext4 -o ro "$bdev" /mnt/x
  tree_check "/mnt/x/two-$mode" "/tmp/check/two-$mode.sums" "$mode: ublk read a file the kernel wrote differently"
  tree_check "/mnt/x/one-$mode" "/tmp/check/one-$mode.sums" "$mode: ublk read a file it wrote earlier differently"
  expect umount /mnt/x
  expect e2fsck -fn "$bdev"
  ublk_stop
  expect vfiokit unbind "$address" --restore
  wait_for 20 test -b /dev/nvme0n1 || check_fail "the nvme driver made no /dev/nvme0n1 after the restore"
done
check_pass "legacy (polled) and iommufd (interrupts): ext4 made through ublk read back by the kernel, fsck clean; the kernel's files read back through ublk, fsck clean; ublk's block size, size, MDTS, write cache, FUA, discard and write-zeroes equal the kernel's"
