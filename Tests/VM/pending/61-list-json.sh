#!/bin/sh
# Check: `vfiokit list --json` agrees with the guest's sysfs on every PCI function (address,
# vendor, device, class, driver, IOMMU group), also after a device changed driver (and, with no
# IOMMU, gained the group vfio-pci makes for it).
#
# Assumes each entry of the array carries HostPCIDevice's fields: "address" ("0000:00:03.0"),
# "vendorID", "deviceID", "classCode" (numbers), "driver" (a name or null) and "iommuGroup" (a
# number or null). If the encoding lands differently, change `field` below.
# configs: iommu noiommu distro
need_tool jq

# FIELD of the entry for ADDRESS in $out, with null printed as "none".
field() {
  jq -r --arg address "$1" ".[] | select(.address == \$address) | .$2 // \"none\"" "$out"
}

# Runs vfiokit list --json and compares it with sysfs.
compare() {
  expect vfiokit list --json
  jq -e 'type == "array"' "$out" >/dev/null || check_fail "vfiokit list --json printed no JSON array"
  local path address count=0
  for path in /sys/bus/pci/devices/*; do
    address=${path##*/}
    count=$((count + 1))
    [ -n "$(field "$address" address)" ] || check_fail "vfiokit list --json has no entry for $address"
    expect_eq "vendorID of $address" "$(field "$address" vendorID)" "$(printf %d "$(cat "$path/vendor")")"
    expect_eq "deviceID of $address" "$(field "$address" deviceID)" "$(printf %d "$(cat "$path/device")")"
    expect_eq "classCode of $address" "$(field "$address" classCode)" "$(printf %d "$(cat "$path/class")")"
    expect_eq "driver of $address" "$(field "$address" driver)" "$(driver_of "$address")"
    expect_eq "iommuGroup of $address" "$(field "$address" iommuGroup)" "$(group_of "$address")"
  done
  expect_eq "number of entries" "$(jq length "$out")" "$count"
}

compare
sysfs_bind "$(dev edu0)" vfio-pci
compare
sysfs_restore "$(dev edu0)"
check_pass
