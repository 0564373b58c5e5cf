# Debian's distro kernel: the package linux-image-amd64 depends on, fetched with `apt-get download`
# and unpacked with `dpkg -x` (never installed), with the modules the checks need. Sourced by
# ../run. Cached outside the clone under the package's name and version plus this recipe; the
# caller holds the cache lock.

# Modules to load in the guest, in this order, each after the modules it depends on. The
# distro kernel builds VFIO, UIO and the real nvme, e1000e and e1000 drivers as modules.
distro_modules=(vfio_iommu_type1 vfio-pci uio_pci_generic nvme e1000e e1000)

# Prints the directory holding vmlinuz, modules/ and modules.load (the load order), preparing it
# first when no cached one matches.
distro_kernel() {
  local attempt package version key out
  for attempt in 1 2; do
    package=$(distro_kernel_package)
    version=""
    [ -z "$package" ] || version=$(apt-cache policy "$package" | awk '/Candidate:/ { print $2 }')
    if [ -n "$version" ] && [ "$version" != "(none)" ]; then
      key=$({
        cat "$vm_dir/lib/distro-kernel.sh"
        echo "$package $version"
      } | sha256sum | cut -c1-16)
      out="$cache_dir/kernel-distro-${package}_$version-$key"
      if [ -f "$out/modules.load" ] || distro_prepare "$package" "$version" "$out"; then
        echo "$out"
        return
      fi
    fi
    # No lists, or stale ones naming a version the archive no longer has.
    ((attempt == 1)) || die "cannot fetch Debian's kernel package (see the apt output above)"
    distro_apt_update
  done
}

# Fetches PACKAGE=VERSION and fills OUT with vmlinuz, modules/, modules.load and release. Returns
# non-zero when the download fails; dies on anything else.
distro_prepare() {
  local package=$1 version=$2 out=$3
  note "preparing the distro kernel $package $version"
  local tmp="$cache_dir/prepare-distro"
  rm -rf "$tmp" && mkdir -p "$tmp/deb" "$tmp/root" "$tmp/out/modules"
  local -a sandbox=()
  # As root, apt drops to the _apt user, who may not write here; download as root instead.
  [ "$(id -u)" != 0 ] || sandbox=(-o APT::Sandbox::User=root)
  if ! (cd "$tmp/deb" && apt-get download "${sandbox[@]}" "$package=$version") >"$tmp/apt.log" 2>&1; then
    cat "$tmp/apt.log" >&2
    return 1
  fi
  dpkg -x "$tmp"/deb/*.deb "$tmp/root" || die "dpkg -x of $package failed"
  local release
  release=$(basename "$(ls -d "$tmp"/root/lib/modules/*/)")
  depmod -b "$tmp/root" "$release" || die "depmod for $release failed"
  cp "$tmp/root/boot/vmlinuz-$release" "$tmp/out/vmlinuz"
  distro_module_order "$tmp/root/lib/modules/$release" "${distro_modules[@]}" >"$tmp/order" || exit 1
  local path name
  while read -r path; do
    name=$(basename "$path")
    case "$name" in
      *.ko) cp "$tmp/root/lib/modules/$release/$path" "$tmp/out/modules/$name" ;;
      *.ko.xz) xz -dc "$tmp/root/lib/modules/$release/$path" >"$tmp/out/modules/${name%.xz}" ;;
      *.ko.zst) zstd -qdc "$tmp/root/lib/modules/$release/$path" >"$tmp/out/modules/${name%.zst}" ;;
      *.ko.gz) gzip -dc "$tmp/root/lib/modules/$release/$path" >"$tmp/out/modules/${name%.gz}" ;;
      *) die "unexpected module file $path" ;;
    esac
    echo "${name%.ko*}.ko"
  done <"$tmp/order" >"$tmp/out/modules.load"
  echo "$release" >"$tmp/out/release"
  rm -rf "$out" && mv -T "$tmp/out" "$out"
  rm -rf "$tmp"
}

# The versioned kernel package linux-image-amd64 depends on, or nothing when apt has no lists.
distro_kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# Refreshes apt's package lists (a fresh machine may have none); as root only.
distro_apt_update() {
  [ "$(id -u)" = 0 ] || die "apt has no package lists: run apt-get update as root"
  note "apt has no package lists; running apt-get update"
  apt-get update -q >&2 || die "apt-get update failed"
}

# Prints, one a line, the module files (relative to MODULE_DIR) to load for the named modules:
# each module after every module it depends on (per modules.dep), none twice.
distro_module_order() {
  local dir=$1
  shift
  awk -v wanted="$*" '
    function canon(name) { gsub("-", "_", name); return name }
    function base(path) { sub(".*/", "", path); sub("[.]ko([.].*)?$", "", path); return canon(path) }
    {
      module = $1; sub(":$", "", module)
      path[base(module)] = module
      deps[base(module)] = ""
      for (i = NF; i >= 2; i--) deps[base(module)] = deps[base(module)] " " base($i)
    }
    function load(name,   n, list, i) {
      if (done[name]++) return
      if (!(name in path)) { print "no module " name " in modules.dep" > "/dev/stderr"; failed = 1; return }
      n = split(deps[name], list, " ")
      for (i = 1; i <= n; i++) load(list[i])
      print path[name]
    }
    END {
      n = split(wanted, names, " ")
      for (i = 1; i <= n; i++) load(canon(names[i]))
      exit failed
    }' "$dir/modules.dep"
}
