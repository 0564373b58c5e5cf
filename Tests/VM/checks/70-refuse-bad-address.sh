#!/bin/sh
# Check: bind, unbind and info refuse an address that is malformed or names no device, with a
# message that quotes it, and change nothing.
# configs: iommu
absent=0000:00:1e.0
[ ! -e "$(sysfs "$absent")" ] || check_fail "$absent exists; pick an absent address for this check"
for address in "$absent" 0000:00:03 00:zz.0 0000:00:20.0 0000:00:03.8 ""; do
  for command in "bind" "unbind" "info"; do
    expect_refused vfiokit $command "$address"
    [ -z "$address" ] || grep -qF -- "$address" "$err" ||
      check_fail "\`vfiokit $command $address\` refused without naming '$address'"
  done
done
for role in $(roles); do
  expect_eq "driver of $role" "$(driver_of "$(dev "$role")")" "$(initial_driver "$role")"
done
check_pass
