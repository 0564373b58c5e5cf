# Functions every check may use; the runner sources this file before the check. Busybox ash.
# The contract is documented in ../README.md ("Writing a check").

# Files the last `run` left: the command's standard output and standard error.
out=/tmp/check/out
err=/tmp/check/err

# Ends the check as passed; an optional note is printed with the verdict. A failure recorded
# earlier, even from a subshell such as $(dev role), stands.
check_pass() {
  [ -s "$VM_VERDICT" ] && exit 1
  printf 'pass\t%s\n' "$*" >"$VM_VERDICT"
  exit 0
}

# Ends the check as failed, saying what was wrong. The first failure recorded is the one reported.
check_fail() {
  [ -s "$VM_VERDICT" ] || printf 'fail\t%s\n' "${*:-failed without a reason}" >"$VM_VERDICT"
  exit 1
}

# The guest address of a device role from /vm/devices (edu0, edu-uio, nvme, e1000e, bridge,
# bridge-edu, bridge-nic).
dev() {
  awk -v role="$1" '$1 == role { print $2; found = 1 } END { exit !found }' /vm/devices ||
    check_fail "no device role '$1' in /vm/devices"
}

# The vendor:device that role is expected to have.
dev_id() {
  awk -v role="$1" '$1 == role { print $3 }' /vm/devices
}

# Every role, one a line.
roles() {
  awk '!/^#/ && NF { print $1 }' /vm/devices
}

sysfs() {
  echo "/sys/bus/pci/devices/$1"
}

# The name of the driver bound to ADDRESS, or "none".
driver_of() {
  if [ -e "/sys/bus/pci/devices/$1/driver" ]; then
    basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
  else
    echo none
  fi
}

# The IOMMU group number of ADDRESS, or "none" when it has no group.
group_of() {
  if [ -e "/sys/bus/pci/devices/$1/iommu_group" ]; then
    basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"
  else
    echo none
  fi
}

# The addresses in ADDRESS's IOMMU group, sorted, on one line.
group_members() {
  ls "/sys/bus/pci/devices/$1/iommu_group/devices" | sort | tr '\n' ' ' | sed 's/ $//'
}

# The driver ROLE's device had when the guest booted (the state every check must leave).
initial_driver() {
  awk -v role="$1" '$1 == role { print $2 }' /run/vm/initial-drivers
}

# Prints and runs a command, keeping its output in $out and $err; returns its exit status.
run() {
  echo "\$ $*"
  "$@" >"$out" 2>"$err"
  local status=$?
  cat "$out" "$err"
  [ "$status" -eq 0 ] || echo "(exit status $status)"
  return "$status"
}

# Runs a command that must succeed.
expect() {
  run "$@"
  local status=$?
  [ "$status" -eq 0 ] || check_fail "\`$*\` exited with status $status"
}

# Runs a command that must refuse: exit non-zero, not by a signal, and say why on stderr. An
# argument parser's complaint about an unknown subcommand or option is not a refusal: it means
# the command under test does not exist.
expect_refused() {
  run "$@"
  local status=$?
  [ "$status" -ne 0 ] || check_fail "\`$*\` succeeded but must be refused"
  [ "$status" -lt 128 ] || check_fail "\`$*\` was killed by signal $((status - 128)) instead of refusing"
  [ -s "$err" ] || check_fail "\`$*\` refused without a message on stderr"
  ! grep -qiE "unexpected argument|unknown option|unknown subcommand" "$err" ||
    check_fail "\`$*\` was not understood: $(head -n1 "$err")"
}

# Fails the check unless the last command's output has an `ok` line for each STEP, as
# `vfiokit selftest` prints them ("ok   factorial: ...").
expect_steps() {
  local step
  for step in "$@"; do
    grep -q "^ok   $step:" "$out" || check_fail "step '$step' did not check out: $(grep ": " "$out" | grep "$step" | head -n1)"
  done
}

# Fails the check unless ACTUAL equals EXPECTED; WHAT names the value.
expect_eq() {
  [ "$2" = "$3" ] || check_fail "$1 is '$2', expected '$3'"
}

# Binds ADDRESS to DRIVER through sysfs (driver_override), as a test fixture independent of
# VFIOKit; fails the check if the kernel does not bind it.
sysfs_bind() {
  local address=$1 driver=$2 path="/sys/bus/pci/devices/$1"
  echo "$driver" >"$path/driver_override" || check_fail "cannot set driver_override of $address"
  [ ! -e "$path/driver" ] || echo "$address" >"$path/driver/unbind" ||
    check_fail "cannot unbind $address from $(driver_of "$address")"
  echo "$address" >/sys/bus/pci/drivers_probe
  expect_eq "driver of $address" "$(driver_of "$address")" "$driver"
}

# Clears ADDRESS's driver_override and lets the kernel pick its own driver again.
sysfs_restore() {
  local address=$1 path="/sys/bus/pci/devices/$1"
  echo >"$path/driver_override"
  [ ! -e "$path/driver" ] || echo "$address" >"$path/driver/unbind"
  echo "$address" >/sys/bus/pci/drivers_probe
}

# Marks the kernel log so dmesg_since_mark shows only what came after.
dmesg_mark() {
  VM_DMESG_MARK=$(dmesg | wc -l)
}

dmesg_since_mark() {
  dmesg | tail -n +"$((${VM_DMESG_MARK:-0} + 1))"
}

# Open file descriptors, in any process, on VFIO, iommufd or UIO: "PID (COMMAND) FD -> TARGET".
vfio_fds() {
  local fd target pid
  for fd in /proc/[0-9]*/fd/*; do
    target=$(readlink "$fd" 2>/dev/null) || continue
    case "$target" in
      /dev/vfio/* | /dev/iommu | /dev/uio* | *vfio*)
        pid=${fd#/proc/}
        pid=${pid%%/*}
        echo "$pid ($(cat "/proc/$pid/comm" 2>/dev/null)) ${fd##*/} -> $target"
        ;;
    esac
  done
}

# WIDTH bytes (1, 2 or 4) of ADDRESS's config space at OFFSET, little-endian, in decimal.
config_read() {
  od -An -tu"$3" -j "$2" -N"$3" "/sys/bus/pci/devices/$1/config" | tr -d ' '
}

# The config-space offset of ADDRESS's capability with ID (0x11 is MSI-X), or nothing when it has
# none. The walk stops after 48 entries, so a looping list cannot hang it.
capability_offset() {
  local address=$1 id=$(($2)) next steps=0
  next=$(config_read "$address" 52 1)
  while [ "$next" -ne 0 ] && [ "$steps" -lt 48 ]; do
    if [ "$(config_read "$address" "$next" 1)" -eq "$id" ]; then
      echo "$next"
      return
    fi
    next=$(config_read "$address" $((next + 1)) 1)
    steps=$((steps + 1))
  done
}

# Waits up to SECONDS for a command to succeed; returns its last status.
wait_for() {
  local tries=$(($1 * 5))
  shift
  until "$@" 2>/dev/null; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    sleep 0.2
  done
}

# Fails the check unless TOOL is in the guest (jq is copied in when the host has it).
need_tool() {
  command -v "$1" >/dev/null || check_fail "$1 is not in the guest: install it on the host (add it to .ci/setup)"
}

# The IMS-through-edu check on one backend (checks 85 and 86): the self-test's steps pass and
# the kernel logs a DMAR fault for the stray message write.
ims_edu_check() {
  local backend=$1 address short
  address=$(dev edu0)
  short=${address#0000:}
  expect vfiokit bind "$address"
  dmesg_mark
  expect vfiokit selftest --driver edu-ims "$address" --backend "$backend"
  expect_steps domain load "random slots" "masked slots" "msi window refused" "unmapped iova"
  dmesg_since_mark >"$out"
  grep -q "DMAR:.*\[$short\] fault addr" "$out" ||
    check_fail "the kernel logged no DMAR fault from $short for the stray message write"
  expect vfiokit unbind "$address" --restore
  check_pass
}

# The driver daemon for the daemon checks (91, 93, 94): `daemon_start ARGS...` runs
# `vfiokit run ARGS... --stats-interval 0` in the background, its output in
# /tmp/check/daemon.out and .err and its pid in $daemon; `daemon_stop` sends it SIGTERM, waits,
# and prints "daemon exit status N" and its output.
daemon_start() {
  vfiokit run "$@" --stats-interval 0 >/tmp/check/daemon.out 2>/tmp/check/daemon.err &
  daemon=$!
}

daemon_stop() {
  kill -TERM "$daemon" 2>/dev/null
  wait "$daemon"
  echo "daemon exit status $?"
  cat /tmp/check/daemon.out /tmp/check/daemon.err
}

# FIELD of the device at ADDRESS in `vfiokit status --json`; empty while no daemon answers.
device_field() {
  vfiokit status --json 2>/dev/null | jq -r --arg a "$1" --arg f "$2" '.devices[] | select(.address == $a) | .[$f]'
}

# The interrupts the device at ADDRESS has counted, or 0 while the daemon does not answer.
device_interrupts() {
  vfiokit status --json 2>/dev/null | jq -r --arg a "$1" '[.devices[] | select(.address == $a) | .interrupts[].count] | add // 0'
}

# The ublk export for the block-export checks (95-97): `ublk_start BACKEND [OPTION...]` serves
# namespace 1 of the NVMe controller over ublk (`vfiokit nvme ublk`, with the options) in the background, its output in
# /tmp/check/ublk.out and .err, its pid in $ublk and its block device in $bdev once it exists;
# `ublk_stop` sends SIGTERM and fails the check unless the server exits 0 and $bdev is gone.
ublk_start() {
  local backend=$1
  shift
  rm -f /tmp/check/ublk.out /tmp/check/ublk.err
  vfiokit nvme ublk "$(dev nvme)" --backend "$backend" "$@" >/tmp/check/ublk.out 2>/tmp/check/ublk.err &
  ublk=$!
  wait_for 30 grep -q "^ublk: /dev/ublkb[0-9]* serves" /tmp/check/ublk.out ||
    { cat /tmp/check/ublk.out /tmp/check/ublk.err; check_fail "vfiokit nvme ublk ($1) made no block device"; }
  bdev=$(sed -n 's|^ublk: \(/dev/ublkb[0-9]*\) serves.*|\1|p' /tmp/check/ublk.out)
  wait_for 10 test -b "$bdev" || check_fail "$bdev was announced but does not exist"
  cat /tmp/check/ublk.out
}

ublk_stop() {
  kill -TERM "$ublk"
  wait "$ublk"
  local status=$?
  cat /tmp/check/ublk.out /tmp/check/ublk.err
  [ "$status" -eq 0 ] || check_fail "vfiokit nvme ublk exited with status $status on SIGTERM"
  [ ! -e "$bdev" ] || check_fail "$bdev outlived the server's orderly stop"
}

# Writes a tree of files of awkward sizes (empty, one byte, around a block, several MiB, nested)
# from /dev/urandom under DIR, and their sha256sums, relative to DIR, to SUMS.
tree_write() {
  local dir=$1 sums=$2 i
  mkdir -p "$dir/a/b/c" "$dir/d"
  : >"$dir/empty"
  head -c 1 /dev/urandom >"$dir/one"
  for i in 511 4095 4096 4097 65537; do head -c "$i" /dev/urandom >"$dir/a/f$i"; done
  head -c $((3 * 1048576 + 17)) /dev/urandom >"$dir/a/b/c/big"
  for i in 1 2 3 4 5 6 7 8; do head -c $((i * 12345)) /dev/urandom >"$dir/d/n$i"; done
  (cd "$dir" && find . -type f | sort | xargs sha256sum) >"$sums"
}

# Fails the check (naming WHERE) unless every file in SUMS under DIR has its checksum.
tree_check() {
  (cd "$1" && sha256sum -c "$2" >/tmp/check/sums.out 2>&1) ||
    check_fail "$3: $(grep -v ': OK$' /tmp/check/sums.out | head -n 3 | tr '\n' ' ')"
}
