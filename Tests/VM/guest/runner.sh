# Runs this boot's checks in the order of /vm/plan/CONFIG and reports each verdict.
# Usage: sh runner.sh CONFIG. Busybox ash.
#
# Verdicts go to /dev/ttyS1, the results channel the host reads; everything a check prints goes
# to the console (ttyS0) between "=== check" and "=== end" lines, for the host's log excerpts.
# After every check the runner enforces "nothing left behind": no process the check started
# still running, no VFIO/iommufd/UIO file descriptor open, and every device with the driver and
# driver_override it had at boot. A check that passed but left something behind fails; the
# state is restored either way so the next check starts clean.

config=$1
results=/dev/ttyS1
plan=/vm/plan/$config
. /vm/helpers.sh

report() {
  echo "$*"
  echo "$*" >"$results"
}

uptime=$(cut -d' ' -f1 /proc/uptime)
echo "VFIOKIT-VM-INIT config=$config uptime=$uptime kernel=$(uname -r)" >"$results"
[ -f "$plan" ] || { report "FAIL runner [$config]: no plan $plan in the initramfs"; exit 1; }

mkdir -p /run/vm /tmp/check
for role in $(roles); do
  address=$(dev "$role")
  echo "$role $(driver_of "$address") $(cat "$(sysfs "$address")/driver_override" 2>/dev/null)"
done >/run/vm/initial-drivers

# Joins standard input's lines with "; ".
join_lines() {
  awk 'NR > 1 { printf "; " } { printf "%s", $0 }'
}

# The session of process PID.
session_of() {
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f4
}

# Userspace processes outside the runner's session (every check runs in a session of its own):
# "PID (COMMAND)".
stray_processes() {
  local dir pid mine
  mine=$(session_of $$)
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" != 1 ] && [ -e "$dir/exe" ] || continue # kernel threads have no executable
    [ "$(session_of "$pid")" != "$mine" ] || continue
    echo "$pid ($(cat "$dir/comm" 2>/dev/null))"
  done
}

# Prints what the last check left behind, one item a line, and undoes it.
left_behind() {
  local fds strays pid role initial override address now now_override
  fds=$(vfio_fds)
  [ -z "$fds" ] || echo "open file descriptors: $(echo "$fds" | join_lines)"
  strays=$(stray_processes)
  if [ -n "$strays" ]; then
    echo "processes still running: $(echo "$strays" | join_lines)"
    for pid in $(echo "$strays" | cut -d' ' -f1); do kill -9 "$pid" 2>/dev/null; done
    sleep 1
  fi
  while read -r role initial override; do
    address=$(dev "$role")
    now=$(driver_of "$address")
    now_override=$(cat "$(sysfs "$address")/driver_override" 2>/dev/null)
    if [ "$now" != "$initial" ] || [ "$now_override" != "$override" ]; then
      echo "$role ($address) has driver $now (override $now_override), not $initial (override $override) as at boot"
      (sysfs_restore "$address") >/dev/null 2>&1
    fi
  done </run/vm/initial-drivers
}

# Waits for the check in session PID to end, killing its whole process group after TIMEOUT
# seconds (and setting timed_out); returns its exit status.
run_with_timeout() {
  local pid=$1 ticks=$(($2 * 5)) state
  timed_out=""
  while state=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) && [ "$state" != Z ]; do
    ticks=$((ticks - 1))
    if [ "$ticks" -le 0 ]; then
      timed_out=yes
      kill -9 -"$pid" 2>/dev/null
      break
    fi
    sleep 0.2
  done
  wait "$pid"
}

while read -r name timeout path; do
  echo "=== check $name [$config]"
  export VM_VERDICT=/tmp/check/verdict VM_CONFIG=$config
  rm -f "$VM_VERDICT" /tmp/check/out /tmp/check/err
  setsid sh -c '. /vm/helpers.sh; cd /tmp/check; . "$0"' "$path" </dev/null &
  run_with_timeout $! "$timeout"
  status=$?
  verdict=$(cut -f1 "$VM_VERDICT" 2>/dev/null)
  reason=$(cut -f2- "$VM_VERDICT" 2>/dev/null)
  case "$timed_out:$verdict:$status" in
    :pass:0) ;;
    :fail:*) verdict=fail ;;
    yes:*) verdict=fail reason="timed out after $timeout s (raise '# timeout:' in the check if it needs longer)" ;;
    *) verdict=fail reason="ended with status $status without check_pass or check_fail" ;;
  esac
  left_behind >/tmp/check/left-behind
  leftovers=$(cat /tmp/check/left-behind)
  if [ -n "$leftovers" ]; then
    echo "$leftovers" | sed 's/^/left behind: /'
    [ "$verdict" = fail ] || verdict=fail reason="left behind: $(echo "$leftovers" | join_lines)"
  fi
  echo "=== end $name: $verdict"
  if [ "$verdict" = pass ]; then
    report "PASS $name [$config]${reason:+ ($reason)}"
  else
    report "FAIL $name [$config]: $reason"
  fi
done <"$plan"
