#!/bin/sh
# Check: 4 KiB random reads at queue depth 32, one queue, on QEMU's NVMe, the kernel's nvme driver
# (fio --direct=1, io_uring) against `vfiokit nvme bench` on the same device in one boot, in equal
# modes: polled (the kernel's poll queue from nvme.poll_queues=1, fio --hipri; vfiokit --poll)
# and interrupt-driven (fio without --hipri; vfiokit's MSI-X path). The sides alternate, the
# kernel first in odd runs and vfiokit first in even ones, $runs runs of $seconds s each; prints
#   nvme randread 4k qd32 polled: vfiokit N, kernel M, ratio R (3 runs, spread S)
# and the same for interrupts (N and M are median IOPS; S is each side's (max - min) / median),
# and the SQ doorbell's cost: a real MMIO write to QEMU's NVMe BAR through vfio-pci, timed
# inside vfiokit's polled loop, one per batch as the driver batches. Passes when every run was
# error-free and the kernel really polled; the ratios are figures, not verdicts (target ≥ 1.0).
# The image is a 64 MiB sparse file: QEMU reads its holes as zeros without device I/O, so
# neither side waits for a disk and neither gains from a page cache the other lacks.
# Only the distro kernel: fio needs SysV shared memory and io_uring, which the custom
# tinyconfig kernel leaves out. For figures, run with VFIOKIT_BIN set to a release build.
# configs: distro
# timeout: 600
need_tool jq
need_tool fio
address=$(dev nvme)
runs=3
seconds=5
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
expect_eq "the kernel's polled I/O on nvme0n1 (nvme.poll_queues=1)" "$(cat /sys/block/nvme0n1/queue/io_poll)" 1

# kernel MODE: fio's IOPS on the kernel's driver, in $iops; MODE polled adds --hipri.
kernel() {
  hipri=""
  [ "$1" = polled ] && hipri=--hipri
  wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver did not take the device back"
  # shellcheck disable=SC2086 # no option when interrupt-driven
  expect fio --name=randread --filename=/dev/nvme0n1 --direct=1 --ioengine=io_uring $hipri --rw=randread --bs=4k \
    --iodepth=32 --numjobs=1 --time_based --runtime="$seconds" --output-format=json --output=/tmp/fio.json
  expect_eq "fio errors ($1)" "$(jq '.jobs[0].error' /tmp/fio.json)" 0
  iops=$(jq '.jobs[0].read.iops | floor' /tmp/fio.json)
}

# vfiokit_side MODE: vfiokit's IOPS on the same device, bound to vfio-pci for the run, in $iops.
vfiokit_side() {
  poll=""
  [ "$1" = polled ] && poll=--poll
  expect vfiokit bind "$address"
  # shellcheck disable=SC2086 # no option when interrupt-driven
  expect vfiokit nvme bench "$address" --workload randread --block-size 4096 --queue-depth 32 --seconds "$seconds" $poll --json
  cp "$out" "/tmp/vfiokit-$1.json"
  expect vfiokit unbind "$address" --restore
  expect_eq "vfiokit benchmark errors ($1)" "$(jq '.errors' "/tmp/vfiokit-$1.json")" 0
  iops=$(jq '.iops | floor' "/tmp/vfiokit-$1.json")
}

# median A B C…, and spread as (max - min) / median in percent.
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
spread() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; printf "%.0f%%", (m > 0 ? (v[NR] - v[1]) * 100 / m : 0) }'; }

lines=""
for mode in polled interrupts; do
  ours="" theirs=""
  run=1
  while [ "$run" -le "$runs" ]; do
    if [ $((run % 2)) = 1 ]; then
      kernel "$mode" && k=$iops
      vfiokit_side "$mode" && v=$iops
    else
      vfiokit_side "$mode" && v=$iops
      kernel "$mode" && k=$iops
    fi
    echo "run $run ($mode): vfiokit $v IOPS, kernel $k IOPS"
    ours="$ours $v" theirs="$theirs $k"
    run=$((run + 1))
  done
  # shellcheck disable=SC2086 # one word per run
  v=$(median $ours) k=$(median $theirs)
  ratio=$(awk -v a="$v" -v b="$k" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  # shellcheck disable=SC2086
  line="nvme randread 4k qd32 $mode: vfiokit $v, kernel $k, ratio $ratio ($runs runs, spread vfiokit $(spread $ours), kernel $(spread $theirs))"
  echo "$line"
  lines="$lines${lines:+; }$line"
done

# The last polled run's doorbell: an MMIO write that QEMU's NVMe emulation serves.
f=/tmp/vfiokit-polled.json
doorbell="nvme SQ doorbell, MMIO write to QEMU's NVMe BAR 0 through vfio-pci: $(jq '.polled_figures.sq_doorbell_ns_per_write | floor' "$f") ns per write, $(jq '.polled_figures.sq_doorbell_ns_per_io | floor' "$f") ns per I/O at $(jq '.polled_figures.ios_per_batch * 100 | floor / 100' "$f") I/Os per batch; polling thread $(jq '.polled_figures.cpu_ns_per_io | floor' "$f") ns CPU per I/O"
echo "$doorbell"
check_pass "$lines; $doorbell"
