#!/bin/sh
# Check: binding the NVMe controller while a filesystem on its namespace is mounted is refused,
# naming the mount, and leaves the controller with nvme and the filesystem mounted.
# configs: iommu
nvme=$(dev nvme) mountpoint=/mnt/nvme
trap 'umount "$mountpoint" 2>/dev/null' EXIT
wait_for 20 test -b /dev/nvme0n1 || check_fail "no /dev/nvme0n1 from the nvme driver"
expect mke2fs -q -F /dev/nvme0n1
mkdir -p "$mountpoint"
expect mount -t ext2 /dev/nvme0n1 "$mountpoint"
expect_refused vfiokit bind "$nvme"
grep -qE "$mountpoint|nvme0n1" "$err" || check_fail "the refusal names neither $mountpoint nor nvme0n1"
expect_eq "driver of nvme after the refusal" "$(driver_of "$nvme")" nvme
grep -q " $mountpoint " /proc/mounts || check_fail "$mountpoint is no longer mounted after the refusal"
expect umount "$mountpoint"
check_pass
