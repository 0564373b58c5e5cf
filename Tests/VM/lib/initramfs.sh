# The guest's initramfs: busybox, the vfiokit binary, jq, fio, nvme (nvme-cli), mkfs.ext4, e2fsck and nbd-client
# (the block export's checks) with the shared libraries they load
# (at the paths they are loaded from), the guest scripts, the checks and their plans, and the
# distro kernel's modules when there are any. Sourced by ../run. Built by an ordinary user: the
# one device node, /dev/console, is written as a newc cpio entry by hand.

# Copies FILE into ROOT at the same absolute path, with every shared library it loads (its ldd
# closure, the dynamic loader included).
initramfs_add_with_closure() {
  local root=$1 file=$2 lib
  initramfs_add_file "$root" "$file"
  while read -r lib; do
    initramfs_add_file "$root" "$lib"
  done < <(ldd "$file" 2>/dev/null | grep -oE '/[^ ]+' | sort -u)
}

# Copies FILE into ROOT at the same absolute path, following symbolic links.
initramfs_add_file() {
  mkdir -p "$1$(dirname "$2")"
  cp -L "$2" "$1$2"
}

# A newc cpio archive holding /dev and the /dev/console character device (5, 1), owned by root.
initramfs_console_cpio() {
  initramfs_cpio_entry 1 040755 0 0 dev
  initramfs_cpio_entry 2 020600 5 1 dev/console
  initramfs_cpio_entry 0 0 0 0 'TRAILER!!!'
}

# One newc entry with no data: INODE, octal MODE, device MAJOR and MINOR, NAME.
initramfs_cpio_entry() {
  local name=$5 size=$((${#5} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$1" "$((8#$2))" 0 0 1 0 0 0 0 "$3" "$4" "$size" 0
  printf '%s\0' "$name"
  local pad=$(((4 - (110 + size) % 4) % 4))
  ((pad == 0)) || head -c "$pad" /dev/zero
}

# Builds the initramfs OUTPUT with the plans in PLAN_DIR and, for the distro kernel, the modules
# and load order in MODULE_DIR (see distro_kernel).
build_initramfs() {
  local output=$1 plan_dir=$2 module_dir=${3:-}
  local root="$output.root"
  rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,root,vm/bin}
  local busybox
  busybox=$(command -v busybox) || die "no busybox: install busybox-static (bash .ci/setup does)"
  cp -L "$busybox" "$root/bin/busybox"
  if ldd "$busybox" >/dev/null 2>&1; then initramfs_add_with_closure "$root" "$busybox"; fi

  initramfs_add_with_closure "$root" "$vfiokit_bin"
  ln -s "$vfiokit_bin" "$root/vm/bin/vfiokit"
  local tool path
  for tool in jq fio nvme mkfs.ext4 e2fsck nbd-client; do
    if path=$(PATH=$PATH:/usr/sbin:/sbin command -v "$tool"); then
      initramfs_add_with_closure "$root" "$(readlink -f "$path")"
      ln -s "$(readlink -f "$path")" "$root/vm/bin/$tool"
    fi
  done

  install -m 755 "$vm_dir/guest/init" "$root/init"
  cp "$vm_dir/guest/runner.sh" "$vm_dir/guest/helpers.sh" "$vm_dir/devices" "$root/vm/"
  cp -r "$plan_dir" "$root/vm/plan"
  cp -r "$vm_dir/checks" "$root/vm/"
  if [ -n "$module_dir" ]; then
    cp -r "$module_dir/modules" "$root/vm/modules"
    cp "$module_dir/modules.load" "$root/vm/modules.load"
  fi

  {
    initramfs_console_cpio
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null)
  } >"$output" || die "packing $output failed"
  rm -rf "$root"
}
