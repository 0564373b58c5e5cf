#!/bin/sh
# Check: ublk against the kernel's nvme driver on QEMU's NVMe, the same fio job (io_uring,
# direct=1, one job, 5 s) on both in one boot, three interleaved runs: random 4 KiB reads and
# writes at queue depth 32 and 128 KiB sequential reads at depth 8. Prints one line each, `ublk
# randread 4k qd32: vfiokit N IOPS, kernel nvme M IOPS, ratio R (...)` with the medians, every
# run's figure and the spread of the per-run ratios (bandwidth in MiB/s for the 128 KiB reads).
# Passes when every run completed without errors; the ratios are figures, not verdicts (target
# >= 1.0).
# For figures, run with VFIOKIT_BIN set to a release build.
# configs: iommu
# timeout: 420
need_tool fio
need_tool jq
address=$(dev nvme)
seconds=5
[ -e /dev/ublk-control ] || check_fail "no /dev/ublk-control: the guest kernel lacks CONFIG_BLK_DEV_UBLK"
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"

# One measurement: DEVICE RW BS QD -> "iops bw_MiB errors" in /tmp/check/DEVICE-RW.
measure() {
  fio --name=m --filename="$1" --ioengine=io_uring --direct=1 --thread --numjobs=1 --rw="$2" --bs="$3" \
    --iodepth="$4" --time_based --runtime="$seconds" --output-format=json --output=/tmp/check/fio.json >/dev/null 2>&1 ||
    check_fail "fio $2 $3 qd$4 on $1 failed"
  kind=read
  [ "$2" = randwrite ] && kind=write
  jq -r ".jobs[0].$kind | \"\(.iops | floor) \(.bw_bytes / 1048576 | floor) \(.total_ios)\"" /tmp/check/fio.json
  jq -r '.jobs[0].error' /tmp/check/fio.json | grep -qx 0 || check_fail "fio $2 $3 qd$4 on $1 reported errors"
}
specs="randread:4k:32 randwrite:4k:32 read:128k:8"
runs=3
# Interleaved: each run measures the kernel's driver, then ublk, so drift in the host's load
# falls on both alike. /tmp/check/SIDE-RW holds one "iops MiB/s ios" line per run.
rm -f /tmp/check/kernel-* /tmp/check/ublk-*
run_no=1
while [ "$run_no" -le "$runs" ]; do
  for spec in $specs; do
    IFS=: read -r rw bs qd <<EOF2
$spec
EOF2
    measure /dev/nvme0n1 "$rw" "$bs" "$qd" >>"/tmp/check/kernel-$rw"
  done
  expect vfiokit bind "$address"
  ublk_start legacy
  for spec in $specs; do
    IFS=: read -r rw bs qd <<EOF2
$spec
EOF2
    measure "$bdev" "$rw" "$bs" "$qd" >>"/tmp/check/ublk-$rw"
  done
  ublk_stop
  expect vfiokit unbind "$address" --restore
  wait_for 20 test -b /dev/nvme0n1 || check_fail "the nvme driver made no /dev/nvme0n1 after the restore"
  run_no=$((run_no + 1))
done
# Column COL (1: IOPS, 2: MiB/s) of FILE: "median all-runs-slash-separated".
figures() {
  median=$(awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }')
  echo "$median $(awk -v c="$2" '{ printf "%s%s", (NR > 1 ? "/" : ""), $c }' "$1")"
}
lines=""
for spec in "randread 4k 32 1" "randwrite 4k 32 1" "read 128k 8 2"; do
  set -- $spec
  unit=IOPS
  [ "$4" = 2 ] && unit=MiB/s
  read -r u uall <<EOF2
$(figures "/tmp/check/ublk-$1" "$4")
EOF2
  read -r k kall <<EOF2
$(figures "/tmp/check/kernel-$1" "$4")
EOF2
  ratio=$(awk -v a="$u" -v b="$k" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  spread=$(paste -d' ' "/tmp/check/ublk-$1" "/tmp/check/kernel-$1" |
    awk -v c="$4" '{ r = ($(c + 3) > 0 ? $c / $(c + 3) : 0); if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r }
      END { printf "%.2f-%.2f", lo, hi }')
  line="ublk $1 $2 qd$3: vfiokit $u $unit, kernel nvme $k $unit, ratio $ratio (median of $runs; vfiokit $uall, kernel $kall, ratio per run $spread)"
  echo "$line"
  lines="$lines${lines:+; }$line"
done
check_pass "$lines"
