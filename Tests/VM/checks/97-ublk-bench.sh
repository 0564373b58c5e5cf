#!/bin/sh
# Check: ublk against the kernel's nvme driver on QEMU's NVMe, the same fio job (io_uring,
# direct=1, one job, 5 s) on both in one boot: random 4 KiB reads and writes at queue depth 32
# and 128 KiB sequential reads at depth 8. Prints one line each, `ublk randread 4k qd32:
# vfiokit N IOPS, kernel nvme M IOPS, ratio R` (bandwidth in MiB/s for the 128 KiB reads). Passes
# when every run completed without errors; the ratios are figures, not verdicts (target >= 1.0).
# For figures, run with VFIOKIT_BIN set to a release build.
# configs: iommu
# timeout: 150
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
set -- "randread 4k 32" "randwrite 4k 32" "read 128k 8"
for spec in "$@"; do
  set -- $spec
  measure /dev/nvme0n1 "$1" "$2" "$3" >"/tmp/check/kernel-$1"
done
expect vfiokit bind "$address"
ublk_start legacy
for spec in "randread 4k 32" "randwrite 4k 32" "read 128k 8"; do
  set -- $spec
  measure "$bdev" "$1" "$2" "$3" >"/tmp/check/ublk-$1"
done
ublk_stop
expect vfiokit unbind "$address" --restore
lines=""
for spec in "randread 4k 32 iops" "randwrite 4k 32 iops" "read 128k 8 bw"; do
  set -- $spec
  read -r ki kb _ <"/tmp/check/kernel-$1"
  read -r ui ub _ <"/tmp/check/ublk-$1"
  if [ "$4" = iops ]; then k=$ki u=$ui unit=IOPS; else k=$kb u=$ub unit=MiB/s; fi
  ratio=$(awk -v a="$u" -v b="$k" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  line="ublk $1 $2 qd$3: vfiokit $u $unit, kernel nvme $k $unit, ratio $ratio"
  echo "$line"
  lines="$lines${lines:+; }$line"
done
check_pass "$lines"
