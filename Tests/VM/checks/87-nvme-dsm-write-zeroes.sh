#!/bin/sh
# Check: Dataset Management (deallocate) and Write Zeroes sent by `vfiokit nvme dsm` and
# `vfiokit nvme write-zeroes` on QEMU's NVMe, read back by the kernel's nvme driver after
# `vfiokit unbind --restore`: the zeroed ranges (without DEAC, with DEAC, and one of 70,000
# blocks, past what one command covers) read as zeroes, the deallocated range does too where
# Identify Namespace's DLFEAT says deallocated blocks read as zeroes, and every block around
# them keeps the pattern the kernel wrote first.
# configs: iommu distro
# timeout: 240
need_tool jq
address=$(dev nvme)
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
lbs=$(cat /sys/block/nvme0n1/queue/logical_block_size)
blocks=$(($(cat /sys/block/nvme0n1/size) * 512 / lbs))
[ "$blocks" -ge 72100 ] || check_fail "the namespace has $blocks blocks; this check needs 72100"

# The kernel writes a pattern: region 1 is blocks 0-4095, region 2 blocks 72000-72099.
dd if=/dev/urandom of=/tmp/p1 bs="$lbs" count=4096 2>/dev/null
dd if=/dev/urandom of=/tmp/p2 bs="$lbs" count=100 2>/dev/null
dd if=/tmp/p1 of=/dev/nvme0n1 bs="$lbs" conv=notrunc,fsync 2>/dev/null || check_fail "the kernel could not write blocks 0-4095"
dd if=/tmp/p2 of=/dev/nvme0n1 bs="$lbs" seek=72000 conv=notrunc,fsync 2>/dev/null || check_fail "the kernel could not write blocks 72000-72099"
sync

expect vfiokit bind "$address"
expect vfiokit nvme identify "$address" --json
reads_zero=$(jq -r '.namespaces[0].deallocatedReadsZero' "$out")
echo "DLFEAT: deallocated blocks read as zeroes: $reads_zero"
expect vfiokit nvme dsm "$address" --lba 100 --blocks 300
expect vfiokit nvme write-zeroes "$address" --lba 600 --blocks 200
expect vfiokit nvme write-zeroes "$address" --lba 1000 --blocks 500 --deac
# 2048 + 70000 = 72048: the rest of region 1 and the first 48 blocks of region 2.
expect vfiokit nvme write-zeroes "$address" --lba 2048 --blocks 70000
expect vfiokit unbind "$address" --restore
expect_eq "driver of nvme after unbind --restore" "$(driver_of "$address")" nvme
wait_for 20 test -b /dev/nvme0n1 || check_fail "the nvme driver made no /dev/nvme0n1 after the restore"
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true

dd if=/dev/nvme0n1 of=/tmp/r1 bs="$lbs" count=4096 2>/dev/null || check_fail "the kernel could not read blocks 0-4095"
dd if=/dev/nvme0n1 of=/tmp/r2 bs="$lbs" skip=72000 count=100 2>/dev/null || check_fail "the kernel could not read blocks 72000-72099"
# What the kernel should read: the pattern with the zeroed ranges cleared.
zero() { dd if=/dev/zero of="$1" bs="$lbs" seek="$2" count="$3" conv=notrunc 2>/dev/null; }
cp /tmp/p1 /tmp/e1
cp /tmp/p2 /tmp/e2
if [ "$reads_zero" = true ]; then
  zero /tmp/e1 100 300
else
  # DLFEAT promises nothing about deallocated blocks: take what was read there.
  dd if=/tmp/r1 of=/tmp/e1 bs="$lbs" skip=100 seek=100 count=300 conv=notrunc 2>/dev/null
fi
zero /tmp/e1 600 200
zero /tmp/e1 1000 500
zero /tmp/e1 2048 2048
zero /tmp/e2 0 48
cmp /tmp/e1 /tmp/r1 || check_fail "blocks 0-4095 read by the kernel differ from the pattern with the deallocated and zeroed ranges cleared"
cmp /tmp/e2 /tmp/r2 || check_fail "blocks 72000-72099 read by the kernel differ: the 70,000-block Write Zeroes should end at 72048"
check_pass "dsm (reads zero: $reads_zero) and write-zeroes (plain, DEAC, 70000 blocks) as the kernel reads them"
