#!/bin/sh
# Check: 4 KiB random reads at queue depth 32 on QEMU's NVMe, side by side in one boot: fio
# (--direct=1, io_uring, else libaio) through the kernel's nvme driver, then `vfiokit nvme bench
# --poll` on the same device. Prints `nvme randread 4k qd32: vfiokit N IOPS, kernel M IOPS,
# ratio R`. Passes when both ran without errors; the ratio is a figure, not a verdict (the
# target is ≥ 1.0). Only the distro kernel: fio needs SysV shared memory and io_uring or AIO,
# which the custom tinyconfig kernel leaves out (CONFIG_SYSVIPC, CONFIG_IO_URING, CONFIG_AIO).
# For figures, run with VFIOKIT_BIN set to a release build.
# configs: distro
# timeout: 180
need_tool jq
need_tool fio
address=$(dev nvme)
seconds=10
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
kernel=""
for engine in io_uring libaio; do
  if run fio --name=randread --filename=/dev/nvme0n1 --direct=1 --ioengine="$engine" --rw=randread --bs=4k \
    --iodepth=32 --numjobs=1 --time_based --runtime="$seconds" --output-format=json --output=/tmp/fio.json; then
    kernel=$(jq '.jobs[0].read.iops | floor' /tmp/fio.json)
    break
  fi
done
[ -n "$kernel" ] || check_fail "fio could not run with io_uring or libaio on /dev/nvme0n1"

expect vfiokit bind "$address"
expect vfiokit nvme bench "$address" --workload randread --block-size 4096 --queue-depth 32 --seconds "$seconds" --poll --json
vfiokit_iops=$(jq '.iops | floor' "$out")
errors=$(jq '.errors' "$out")
expect vfiokit unbind "$address" --restore
expect_eq "benchmark errors" "$errors" 0
ratio=$(awk -v a="$vfiokit_iops" -v b="$kernel" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
line="nvme randread 4k qd32: vfiokit $vfiokit_iops IOPS, kernel $kernel IOPS, ratio $ratio"
echo "$line"
check_pass "$line (fio $engine)"
