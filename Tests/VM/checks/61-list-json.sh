#!/bin/sh
# Check: `vfiokit list --json` agrees with the guest's sysfs on every PCI function (address,
# vendor, device, class, driver, IOMMU group), also after a device changed driver (and, with no
# IOMMU, gained the group vfio-pci makes for it).
#
# Each entry carries "address", "vendor", "device" and "class" exactly as sysfs prints them
# ("0x1234"), "driver" (a name or null) and "iommuGroup" (a number or null).
# configs: iommu noiommu distro
need_tool jq

# One line per PCI function as sysfs shows it: address vendor device class driver group.
from_sysfs() {
  local path address
  for path in /sys/bus/pci/devices/*; do
    address=${path##*/}
    echo "$address $(cat "$path/vendor") $(cat "$path/device") $(cat "$path/class")" \
      "$(driver_of "$address") $(group_of "$address")"
  done | sort
}

# The same from `vfiokit list --json` in $out.
from_list() {
  jq -r '.[] | [.address, .vendor, .device, .class, (.driver // "none"), (.iommuGroup // "none")]
    | map(tostring) | join(" ")' "$out" | sort
}

# Runs vfiokit list --json and compares it with sysfs.
compare() {
  expect vfiokit list --json
  jq -e 'type == "array"' "$out" >/dev/null || check_fail "vfiokit list --json printed no JSON array"
  from_sysfs >/tmp/check/sysfs
  from_list >/tmp/check/list || check_fail "vfiokit list --json lacks the expected fields"
  diff /tmp/check/sysfs /tmp/check/list ||
    check_fail "vfiokit list --json disagrees with sysfs (- sysfs, + list): $(diff /tmp/check/sysfs /tmp/check/list | grep '^[-+][0-9a-f]' | head -n2 | tr '\n' ' ')"
}

compare
sysfs_bind "$(dev edu0)" vfio-pci
compare
sysfs_restore "$(dev edu0)"
check_pass
