# The custom guest kernel: Debian's linux-source-6.12, `make tinyconfig` plus kernel.config.
# Sourced by ../run. The result is cached outside the clone under a key made of this recipe, the
# fragment, the source package version and the compiler, so a machine builds it once. The caller
# holds the cache lock.

custom_kernel_source=/usr/src/linux-source-6.12.tar.xz

# Prints the path of the cached bzImage, building it first when no cached one matches.
custom_kernel() {
  [ -f "$custom_kernel_source" ] ||
    die "no $custom_kernel_source: install linux-source-6.12 (bash .ci/setup does)"
  local key
  key=$({
    cat "$vm_dir/lib/custom-kernel.sh" "$vm_dir/kernel.config"
    dpkg-query -W -f='${Version}\n' linux-source-6.12
    gcc --version | head -n1
  } | sha256sum | cut -c1-16)
  local out="$cache_dir/kernel-custom-$key"
  if [ -f "$out/bzImage" ]; then
    echo "$out/bzImage"
    return
  fi
  note "building the custom kernel into $out (about 3 to 5 minutes on 2 cores)"
  local started=$SECONDS
  local tmp="$cache_dir/build-custom-$key"
  rm -rf "$cache_dir"/build-custom-* && mkdir -p "$tmp/obj" # a failed build's, kept for its log
  tar -xf "$custom_kernel_source" -C "$tmp" || die "cannot unpack $custom_kernel_source"
  local src="$tmp/linux-source-6.12" log="$tmp/build.log"
  {
    make -C "$src" O="$tmp/obj" tinyconfig &&
      cat "$vm_dir/kernel.config" >>"$tmp/obj/.config" &&
      make -C "$src" O="$tmp/obj" olddefconfig
  } >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "kernel configuration failed (log: $log)"; }
  local line missing=()
  while IFS= read -r line; do
    grep -qxF "$line" "$tmp/obj/.config" || missing+=("$line")
  done < <(grep -E '^CONFIG_[A-Z0-9_]+=y$' "$vm_dir/kernel.config")
  ((${#missing[@]} == 0)) ||
    die "olddefconfig dropped ${missing[*]} from kernel.config: enable what they depend on"
  make -C "$src" O="$tmp/obj" -j"$(nproc)" bzImage >>"$log" 2>&1 ||
    { tail -n 40 "$log" >&2; die "kernel build failed (log: $log)"; }
  mkdir -p "$out.new"
  cp "$tmp/obj/arch/x86/boot/bzImage" "$tmp/obj/.config" "$out.new/"
  mv -T "$out.new" "$out"
  rm -rf "$tmp"
  note "custom kernel built in $((SECONDS - started)) s"
  echo "$out/bzImage"
}
