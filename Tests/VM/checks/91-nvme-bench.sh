#!/bin/sh
# Check: 4 KiB random reads at queue depth 32 on QEMU's NVMe, side by side in one boot: fio
# (--direct=1) through the kernel's nvme driver, then `vfiokit nvme bench --poll` on the same
# device. Prints `nvme randread 4k qd32: vfiokit N IOPS, kernel M IOPS, ratio R`. Passes when
# both ran without errors; the ratio is a figure, not a verdict (the target is ≥ 1.0). fio uses
# io_uring, else libaio, at iodepth 32; the custom tinyconfig kernel has neither (no
# CONFIG_IO_URING, no CONFIG_AIO), so there it runs 32 psync jobs, the same 32 reads in flight.
# fio runs its jobs as threads (--thread): the custom kernel has no SysV shared memory for
# its processes. For figures, run with VFIOKIT_BIN set to a release build.
# configs: iommu distro
# timeout: 180
need_tool jq
need_tool fio
address=$(dev nvme)
seconds=10
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
kernel=""
for engine in io_uring libaio psync; do
  if [ "$engine" = psync ]; then depth="--iodepth=1 --numjobs=32 --group_reporting"; else depth="--iodepth=32 --numjobs=1"; fi
  # shellcheck disable=SC2086
  if run fio --name=randread --thread --filename=/dev/nvme0n1 --direct=1 --ioengine="$engine" --rw=randread --bs=4k $depth \
    --time_based --runtime="$seconds" --output-format=json --output=/tmp/fio.json; then
    kernel=$(jq '.jobs[0].read.iops | floor' /tmp/fio.json)
    break
  fi
done
[ -n "$kernel" ] || check_fail "fio could not run with io_uring, libaio or psync on /dev/nvme0n1"

expect vfiokit bind "$address"
expect vfiokit nvme bench "$address" --workload randread --block-size 4096 --queue-depth 32 --seconds "$seconds" --poll --json
vfiokit_iops=$(jq '.iops | floor' "$out")
errors=$(jq '.errors' "$out")
expect vfiokit unbind "$address" --restore
expect_eq "benchmark errors" "$errors" 0
ratio=$(awk -v a="$vfiokit_iops" -v b="$kernel" 'BEGIN { printf "%.2f", b > 0 ? a / b : 0 }')
line="nvme randread 4k qd32: vfiokit $vfiokit_iops IOPS, kernel $kernel IOPS, ratio $ratio"
echo "$line"
check_pass "$line (fio $engine)"
