# Which checks run in which boot configuration, read from each check file's header. Sourced by
# ../run. See ../README.md ("Writing a check") for the header.

default_check_timeout=120

# The check's name: its file name without the NN- order prefix and the .sh suffix.
check_name() {
  local name
  name=$(basename "$1" .sh)
  echo "${name#[0-9][0-9]-}"
}

# The configurations the check's "# configs:" header names; dies if it names none or an unknown one.
check_configs() {
  local configs config
  configs=$(sed -n 's/^# configs:[[:space:]]*//p' "$1" | head -n1)
  [ -n "$configs" ] || die "$1 has no '# configs:' header line (one or more of: ${!config_kernel[*]})"
  for config in $configs; do
    [ -n "${config_kernel[$config]:-}" ] ||
      die "$1 names configuration '$config'; known ones: ${!config_kernel[*]}"
  done
  echo "$configs"
}

# The check's "# timeout:" header in seconds, or the default.
check_timeout() {
  local timeout
  timeout=$(sed -n 's/^# timeout:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$1" | head -n1)
  echo "${timeout:-$default_check_timeout}"
}

# Writes PLAN_DIR/CONFIG for every selected configuration: one line per check to run there,
# "NAME TIMEOUT GUEST_PATH", in file-name order. Arguments after PLAN_DIR are the check files.
write_plans() {
  local plan_dir=$1 file name config
  shift
  rm -rf "$plan_dir" && mkdir -p "$plan_dir"
  for config in "${selected_configs[@]}"; do : >"$plan_dir/$config"; done
  declare -A seen=()
  for file in "$@"; do
    name=$(check_name "$file")
    [ -z "${seen[$name]:-}" ] || die "two checks are named $name: ${seen[$name]} and $file"
    seen[$name]=$file
    ((${#only_checks[@]} == 0)) || [[ " ${only_checks[*]} " == *" $name "* ]] || continue
    for config in $(check_configs "$file"); do
      [ -f "$plan_dir/$config" ] || continue
      echo "$name $(check_timeout "$file") /vm/$(basename "$(dirname "$file")")/$(basename "$file")" \
        >>"$plan_dir/$config"
    done
  done
  for name in "${only_checks[@]}"; do
    [ -n "${seen[$name]:-}" ] || die "no check named $name"
  done
}
