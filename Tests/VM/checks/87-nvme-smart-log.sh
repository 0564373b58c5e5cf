#!/bin/sh
# Check: `vfiokit nvme smart-log --json` on QEMU's NVMe agrees field by field with nvme-cli's
# `nvme smart-log -o json` read through the kernel's nvme driver: the health fields are equal,
# and the I/O counters and power-on hours are no lower (the kernel's reads come first).
# `vfiokit nvme error-log --json` reads the Error Information log and parses.
# configs: iommu
# timeout: 180
need_tool jq
need_tool nvme
address=$(dev nvme)
wait_for 20 test -c /dev/nvme0 || check_fail "the kernel's nvme driver made no /dev/nvme0"
nvme smart-log /dev/nvme0 -o json >/tmp/kernel.json 2>/tmp/kernel.err || check_fail "nvme smart-log failed: $(cat /tmp/kernel.err)"
echo "nvme-cli: $(tr -d '\n ' </tmp/kernel.json)"

expect vfiokit bind "$address"
expect vfiokit nvme smart-log "$address" --json
cp "$out" /tmp/vfiokit.json
field() { jq -r ".$2 | if type == \"object\" then .value else . end" "$1"; }
for key in critical_warning temperature avail_spare spare_thresh percent_used \
  endurance_grp_critical_warning_summary unsafe_shutdowns media_errors num_err_log_entries \
  warning_temp_time critical_comp_time thm_temp1_trans_count thm_temp2_trans_count; do
  expect_eq "$key" "$(field /tmp/vfiokit.json "$key")" "$(field /tmp/kernel.json "$key")"
done
for key in data_units_read data_units_written host_read_commands host_write_commands power_cycles power_on_hours; do
  k=$(field /tmp/kernel.json "$key") v=$(field /tmp/vfiokit.json "$key")
  [ "$v" -ge "$k" ] || check_fail "$key is $v, below nvme-cli's $k read earlier"
done
expect vfiokit nvme error-log "$address" --json
jq -e '.errors | type == "array"' "$out" >/dev/null || check_fail "error-log --json has no errors array"
expect vfiokit unbind "$address" --restore
check_pass "smart-log: every health field equal to nvme-cli's, counters no lower; error-log parses"
