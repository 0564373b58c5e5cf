# Boots one configuration in QEMU, follows its results channel and reports every planned check.
# Sourced by ../run.
#
# The guest has two serial ports: ttyS0 is the console (kernel and check output), kept in
# WORK/CONFIG.console.log; ttyS1 carries only the runner's protocol lines (init reached, one
# verdict a check, the end marker), kept in WORK/CONFIG.results. The host expects each planned
# check's verdict within that check's timeout plus a margin after the previous one, so a hung
# guest is stopped promptly rather than at one global deadline.

boot_init_timeout=${VFIOKIT_VM_INIT_TIMEOUT:-180} # seconds from QEMU's start to the guest's /init
boot_margin=30                                    # seconds beyond a check's own timeout

# The accelerator's QEMU arguments: KVM when the CPU offers it and /dev/kvm is usable, else TCG.
qemu_accel_args() {
  local accel=${VFIOKIT_VM_ACCEL:-}
  if [ -z "$accel" ]; then
    accel=tcg
    if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
  fi
  case "$accel" in
    kvm) echo "-accel kvm -cpu host -machine q35,kernel-irqchip=split" ;;
    tcg) echo "-accel tcg -cpu max -machine q35" ;;
    *) die "VFIOKIT_VM_ACCEL is '$accel'; use kvm or tcg" ;;
  esac
}

# Prints the QEMU command for CONFIG, one argument a line.
qemu_command() {
  local config=$1 kernel=$2 initrd=$3 disk=$4 console=$5 results=$6
  local arg role address id device
  echo qemu-system-x86_64
  for arg in $(qemu_accel_args); do echo "$arg"; done
  printf '%s\n' -m 1G -smp 2 -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$console" -serial "file:$results" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet no_timer_check hugepages=16 vfiokit_vm_config=$config ${config_append[$config]}"
  if [ "${config_iommu[$config]}" = 1 ]; then
    printf '%s\n' -device intel-iommu,intremap=on,caching-mode=on
  fi
  # discard=unmap: QEMU's NVMe says deallocated blocks read as zeroes (DLFEAT 001b), which holds
  # only when its block layer passes the deallocation on (holes punched in the raw image).
  printf '%s\n' -drive "if=none,id=nvme-disk,file=$disk,format=raw,discard=unmap"
  while read -r role address id device; do
    printf '%s\n' -device "$device"
  done < <(grep -vE '^(#|$)' "$vm_dir/devices")
}

# Boots CONFIG with KERNEL and INITRD, checks the verdicts against PLAN, prints one line per
# planned check plus the boot's own, and writes "PASSED FAILED" to WORK/CONFIG.tally.
boot_config() {
  local config=$1 kernel=$2 initrd=$3 plan=$4
  local console="$work_dir/$config.console.log" results="$work_dir/$config.results"
  local disk="$work_dir/$config.nvme.img" qemu_log="$work_dir/$config.qemu.log"
  rm -f "$console" "$results" "$disk"
  truncate -s 64M "$disk"
  local -a cmd expected timeouts
  mapfile -t cmd < <(qemu_command "$config" "$kernel" "$initrd" "$disk" "$console" "$results")
  local name timeout path
  while read -r name timeout path; do
    expected+=("$name")
    timeouts+=("$timeout")
  done <"$plan"
  echo "${cmd[*]}" >"$qemu_log"

  local started=$SECONDS
  "${cmd[@]}" >>"$qemu_log" 2>&1 </dev/null &
  local qemu=$!
  local done_lines=0 next=0 init_at="" ended="" stopped="" deadline=$((SECONDS + boot_init_timeout))
  local -A verdict=()
  local line total
  while :; do
    total=0
    [ ! -f "$results" ] || total=$(wc -l <"$results")
    while ((done_lines < total)); do
      done_lines=$((done_lines + 1))
      line=$(sed -n "${done_lines}p" "$results" | tr -d '\r')
      case "$line" in
        VFIOKIT-VM-INIT*)
          init_at=$((SECONDS - started))
          note "$config: guest reached /init after ${init_at} s (${line#VFIOKIT-VM-INIT })"
          ;;
        "PASS "* | "FAIL "*)
          echo "$line"
          name=${line#* }
          name=${name%% *}
          verdict[$name]=${line%% *}
          next=$((next + 1))
          ;;
        VFIOKIT-VM-END*) ended=$((SECONDS - started)) ;;
        *) [ -z "$line" ] || note "$config: guest said: $line" ;;
      esac
      if [ -n "$init_at" ]; then
        if ((next < ${#timeouts[@]})); then
          deadline=$((SECONDS + timeouts[next] + boot_margin))
        else
          deadline=$((SECONDS + boot_margin))
        fi
      fi
    done
    [ -z "$ended" ] || break
    if ! kill -0 "$qemu" 2>/dev/null; then
      wait "$qemu" && stopped="QEMU exited before the end marker" ||
        stopped="QEMU exited with status $? before the end marker (see $qemu_log)"
      break
    fi
    if ((SECONDS > deadline)); then
      if [ -z "$init_at" ]; then
        stopped="the guest did not reach /init within $boot_init_timeout s"
      elif ((next < ${#expected[@]})); then
        stopped="no verdict from ${expected[next]} within its ${timeouts[next]} s timeout + $boot_margin s"
      else
        stopped="no end marker within $boot_margin s of the last verdict"
      fi
      break
    fi
    sleep 1
  done
  if [ -n "$stopped" ]; then boot_stop "$qemu" 0; else boot_stop "$qemu" 10; fi

  local passed=0 failed=0 i
  for i in "${!expected[@]}"; do
    name=${expected[i]}
    case "${verdict[$name]:-}" in
      PASS) passed=$((passed + 1)) ;;
      FAIL)
        failed=$((failed + 1))
        boot_excerpt "$console" "$name"
        ;;
      *)
        failed=$((failed + 1))
        echo "FAIL $name [$config]: no verdict (${stopped:-the guest never ran it})"
        ;;
    esac
  done
  if [ -n "$ended" ] && [ -z "$stopped" ]; then
    passed=$((passed + 1))
    echo "PASS boot [$config] (/init after ${init_at} s, done after ${ended} s)"
  else
    failed=$((failed + 1))
    echo "FAIL boot [$config]: ${stopped:-no end marker}"
    echo "  last console lines ($console):"
    tail -n 40 "$console" | tr -d '\r' | sed 's/^/  | /'
  fi
  echo "$passed $failed" >"$work_dir/$config.tally"
}

# Stops QEMU, which exits by itself when the guest powers off: kills it if it has not within
# GRACE seconds.
boot_stop() {
  local qemu=$1 grace=$2 i
  for ((i = 0; i < grace; i++)); do
    kill -0 "$qemu" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$qemu" 2>/dev/null; then
    kill "$qemu" 2>/dev/null
    sleep 1
    kill -9 "$qemu" 2>/dev/null
  fi
  wait "$qemu" 2>/dev/null || true
}

# Prints the console lines of CHECK's run (its "=== check" to "=== end" section), at most 80.
boot_excerpt() {
  local console=$1 name=$2
  echo "  console output of $name ($console):"
  tr -d '\r' <"$console" |
    awk -v begin="=== check $name " -v end="=== end $name:" \
      'index($0, begin) == 1 { on = 1 } on { print } on && index($0, end) == 1 { exit }' |
    tail -n 80 | sed 's/^/  | /'
}
