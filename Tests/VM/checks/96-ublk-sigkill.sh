#!/bin/sh
# Check, with the device bound to the legacy type1 container and then to iommufd: SIGKILL of the
# ublk server while fio writes to /dev/ublkbN (fio io_uring, direct, random 4 KiB writes with
# crc32c verify headers). The guest does not hang: fio ends with I/O
# errors within seconds and the kernel removes the block device. A new server serves the
# namespace again, and fio's verify-only rerun (the state fio saved on exit lists every write it
# saw acknowledged) finds every one of them intact. fio's saved state counts the writes that
# failed with EIO at the kill as written too, so a verify failure passes only at an offset whose
# write fio saw fail; any other is an acknowledged write lost.
# configs: iommu
# timeout: 240
need_tool fio
address=$(dev nvme)
[ -e /dev/ublk-control ] || check_fail "no /dev/ublk-control: the guest kernel lacks CONFIG_BLK_DEV_UBLK"
wait_for 20 test -b /dev/nvme0n1 || check_fail "the kernel's nvme driver made no /dev/nvme0n1"
notes=""
for mode in legacy iommufd; do
  rm -f /tmp/check/*verify.state
  expect vfiokit bind "$address"
  ublk_start "$mode"
  cd /tmp/check || check_fail "$mode: no /tmp/check"
  job="--name=acked --ioengine=io_uring --direct=1 --thread --rw=randwrite --bs=4k --iodepth=16 --size=56M --verify=crc32c --randrepeat=1"
  # shellcheck disable=SC2086
  fio $job --filename="$bdev" --do_verify=0 --verify_state_save=1 >/tmp/check/fio1.out 2>&1 &
  fio=$!
  # Kill once the kernel has seen 2,000 writes complete (field 5 of the block device's stat).
  written() { [ "$(awk '{ print $5 }' "/sys/block/${bdev#/dev/}/stat")" -ge 2000 ]; }
  wait_for 60 written || check_fail "$mode: fio did not get 2,000 writes through $bdev in 60 s"
  kill -KILL "$ublk"
  wait "$ublk" 2>/dev/null
  killed() { ! kill -0 "$fio" 2>/dev/null; }
  wait_for 30 killed || check_fail "$mode: fio still runs 30 s after the server was killed: the guest hangs on $bdev"
  wait "$fio"
  status=$?
  cat /tmp/check/fio1.out
  [ "$status" -ne 0 ] || check_fail "$mode: fio finished all its writes before the kill: nothing was interrupted"
  grep -qiE "error|Input/output" /tmp/check/fio1.out || check_fail "$mode: fio ended without reporting the I/O errors"
  wait_for 20 test ! -e "$bdev" || check_fail "$mode: $bdev still exists 20 s after its server was killed"
  ls /tmp/check/*verify.state >/dev/null 2>&1 || check_fail "$mode: fio saved no verify state"
  grep -oE 'io_u error on file .*write offset=[0-9]+' /tmp/check/fio1.out | sed 's/.*offset=//' | sort -u >/tmp/check/failed
  [ -s /tmp/check/failed ] || check_fail "$mode: fio reported no failed write offsets"

  ublk_start "$mode"
  # shellcheck disable=SC2086
  run fio $job --filename="$bdev" --verify_only --verify_state_load=1 --continue_on_error=verify
  verified=$(grep -oE 'issued rwts: total=[0-9]+' "$out" | head -n1 | sed 's/.*=//')
  [ "${verified:-0}" -ge 2000 ] || check_fail "$mode: fio verified only ${verified:-0} blocks"
  cat "$out" "$err" | grep -iE 'verify' | grep -oE 'offset[ =][0-9]+' | sed 's/offset[ =]//' | sort -u >/tmp/check/bad
  lost=$(grep -vxF -f /tmp/check/failed /tmp/check/bad)
  [ -z "$lost" ] || check_fail "$mode: acknowledged writes lost at offsets $(echo $lost | cut -c1-200)"
  ublk_stop
  expect vfiokit unbind "$address" --restore
  notes="$notes${notes:+; }$mode: $verified blocks checked, $(wc -l </tmp/check/bad) mismatches, all at the $(wc -l </tmp/check/failed) writes that failed"
done
check_pass "fio ended with errors after SIGKILL, the device went away, a new server answered, every acknowledged write intact ($notes)"
