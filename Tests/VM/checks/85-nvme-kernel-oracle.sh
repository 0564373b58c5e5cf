#!/bin/sh
# Check: the NVMe driver against the kernel's own nvme driver, on QEMU's NVMe. Data the kernel
# wrote with dd is read back identical by `vfiokit nvme read`; data `vfiokit nvme write` put at
# several LBAs (one block, a two-page transfer, transfers that need PRP lists, the last blocks of
# the namespace) is read back identical by the kernel with dd after `vfiokit unbind --restore`;
# `vfiokit nvme identify` agrees with sysfs on model, serial and namespace size; `vfiokit nvme
# verify` passes.
# configs: iommu distro
# timeout: 240
need_tool jq
address=$(dev nvme)
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
ctrl=$(ls -d /sys/class/nvme/nvme* | head -n1)
model=$(sed 's/ *$//' "$ctrl/model")
serial=$(sed 's/ *$//' "$ctrl/serial")
sectors=$(cat /sys/block/nvme0n1/size)
lbs=$(cat /sys/block/nvme0n1/queue/logical_block_size)
blocks=$((sectors * 512 / lbs))
echo "kernel: model '$model', serial '$serial', $blocks blocks of $lbs bytes"

# The kernel writes: 3 blocks at LBA 300 and 96 KiB (a PRP list) at LBA 4096.
dd if=/dev/urandom of=/tmp/k1 bs="$lbs" count=3 2>/dev/null
dd if=/dev/urandom of=/tmp/k2 bs=1024 count=96 2>/dev/null
dd if=/tmp/k1 of=/dev/nvme0n1 bs="$lbs" seek=300 conv=notrunc,fsync 2>/dev/null || check_fail "the kernel could not write LBA 300"
dd if=/tmp/k2 of=/dev/nvme0n1 bs="$lbs" seek=4096 conv=notrunc,fsync 2>/dev/null || check_fail "the kernel could not write LBA 4096"
sync

expect vfiokit bind "$address"
expect vfiokit nvme identify "$address" --json
expect_eq "model number" "$(jq -r .controller.modelNumber "$out")" "$model"
expect_eq "serial number" "$(jq -r .controller.serialNumber "$out")" "$serial"
expect_eq "namespace 1 size in blocks" "$(jq -r '.namespaces[0].size' "$out")" "$blocks"
expect_eq "namespace 1 block size" "$(jq -r '.namespaces[0].blockSize' "$out")" "$lbs"

expect vfiokit nvme read "$address" --lba 300 --blocks 3 --output /tmp/v1
cmp /tmp/k1 /tmp/v1 || check_fail "vfiokit read 3 blocks at LBA 300 differently from what the kernel wrote"
expect vfiokit nvme read "$address" --lba 4096 --blocks $((96 * 1024 / lbs)) --output /tmp/v2
cmp /tmp/k2 /tmp/v2 || check_fail "vfiokit read 96 KiB at LBA 4096 differently from what the kernel wrote"

# vfiokit writes: (LBA, bytes) — one block, two pages, a PRP list, the largest transfer, the end.
last=$((blocks - 8))
set -- 100:"$lbs" 200:8192 1000:40960 6000:524288 "$last":$((8 * lbs))
for spec in "$@"; do
  lba=${spec%:*} bytes=${spec#*:}
  dd if=/dev/urandom of="/tmp/w$lba" bs="$bytes" count=1 2>/dev/null
  expect vfiokit nvme write "$address" --lba "$lba" --input "/tmp/w$lba"
done
expect vfiokit nvme verify "$address"
grep -q "^verify: 5 ok, 0 failed" "$out" || check_fail "vfiokit nvme verify: $(grep -v '^ok' "$out" | head -n1)"

expect vfiokit unbind "$address" --restore
expect_eq "driver of nvme after unbind --restore" "$(driver_of "$address")" nvme
wait_for 20 test -b /dev/nvme0n1 || check_fail "the nvme driver made no /dev/nvme0n1 after the restore"
for spec in "$@"; do
  lba=${spec%:*} bytes=${spec#*:}
  dd if=/dev/nvme0n1 of="/tmp/r$lba" bs="$lbs" skip="$lba" count=$((bytes / lbs)) 2>/dev/null
  cmp "/tmp/w$lba" "/tmp/r$lba" || check_fail "the kernel read $bytes bytes at LBA $lba differently from what vfiokit wrote"
done
check_pass "identify matches sysfs; kernel→vfiokit at 2 ranges and vfiokit→kernel at $# ranges identical"
