#!/bin/sh
# Check: ublk with the kernel as the oracle, on QEMU's NVMe. `vfiokit nvme ublk` (legacy type1)
# serves the namespace as /dev/ublkbN: mkfs.ext4, mount, a tree of files with known checksums,
# sync, unmount, SIGTERM (the server stops in order and the block device goes away). The kernel's
# nvme driver then mounts /dev/nvme0n1, finds every checksum, and `e2fsck -fn` is clean. The
# reverse: files the kernel wrote are read back through ublk (iommufd) with equal checksums.
# configs: iommu
# timeout: 180
need_tool mkfs.ext4
need_tool e2fsck
address=$(dev nvme)
[ -e /dev/ublk-control ] || check_fail "no /dev/ublk-control: the guest kernel lacks CONFIG_BLK_DEV_UBLK"
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
lbs=$(cat /sys/block/nvme0n1/queue/logical_block_size)
sectors=$(cat /sys/block/nvme0n1/size)
mkdir -p /mnt/x

# vfiokit → kernel.
expect vfiokit bind "$address"
ublk_start legacy
name=${bdev#/dev/}
expect_eq "ublk logical block size" "$(cat /sys/block/$name/queue/logical_block_size)" "$lbs"
expect_eq "ublk size in sectors" "$(cat /sys/block/$name/size)" "$sectors"
expect mkfs.ext4 -q -F "$bdev"
expect mount -t ext4 "$bdev" /mnt/x
tree_write /mnt/x/one /tmp/check/one.sums
sync
expect umount /mnt/x
ublk_stop
expect vfiokit unbind "$address" --restore
wait_for 20 test -b /dev/nvme0n1 || check_fail "the nvme driver made no /dev/nvme0n1 after the restore"
expect mount -t ext4 /dev/nvme0n1 /mnt/x
tree_check /mnt/x/one /tmp/check/one.sums "the kernel read a file vfiokit wrote through ublk differently"

# kernel → vfiokit.
tree_write /mnt/x/two /tmp/check/two.sums
sync
expect umount /mnt/x
expect e2fsck -fn /dev/nvme0n1
expect vfiokit bind "$address"
ublk_start iommufd
expect mount -t ext4 -o ro "$bdev" /mnt/x
tree_check /mnt/x/two /tmp/check/two.sums "ublk read a file the kernel wrote differently"
tree_check /mnt/x/one /tmp/check/one.sums "ublk read a file it wrote earlier differently"
expect umount /mnt/x
expect e2fsck -fn "$bdev"
ublk_stop
expect vfiokit unbind "$address" --restore
check_pass "ext4 through ublk (legacy) read back by the kernel, fsck clean; the kernel's files read back through ublk (iommufd)"
