#!/bin/sh
# Check: `vfiokit info --json` reads back, through VFIO, the regions and interrupts the kernel
# reports: for the NVMe controller, BAR 0 with the size sysfs shows and the MSI-X-mappable
# capability in its region-info chain (the MSI-X table lives there), the 4 KiB PCIe config region,
# 65 MSI-X vectors and one INTx line; for e1000e, the MSI-X capability on BAR 3 and 5 vectors.
#
# The JSON's "vfio" object has "regions": [{"index", "size", "capabilities": ["msix-mappable", …]}]
# and "irqs": [{"index", "count"}], indexed as VFIO does (VFIO_PCI_BAR0_REGION_INDEX = 0,
# VFIO_PCI_CONFIG_REGION_INDEX = 7; VFIO_PCI_INTX_IRQ_INDEX = 0, VFIO_PCI_MSIX_IRQ_INDEX = 2).
# configs: iommu distro
need_tool jq

region_size() { jq -r --argjson i "$1" '.vfio.regions[] | select(.index == $i) | .size' "$out"; }
region_caps() { jq -r --argjson i "$1" '[.vfio.regions[] | select(.index == $i) | .capabilities[]?] | join(" ")' "$out"; }
irq_count() { jq -r --argjson i "$1" '.vfio.irqs[] | select(.index == $i) | .count' "$out"; }

# The size of ADDRESS's BAR N from sysfs, in decimal.
bar_size() {
  local start end
  read -r start end _ <<EOT
$(sed -n "$(($2 + 1))p" "$(sysfs "$1")/resource")
EOT
  echo $((end - start + 1))
}

# Binds ADDRESS ($2, called $1 in messages) and reads `vfiokit info --json`, then checks the
# region of BAR $3 (the size sysfs shows, the MSI-X-mappable capability) and that MSI-X has $4
# vectors. The device stays bound for the caller's own checks.
check_msix_bar() {
  expect vfiokit bind "$2"
  expect vfiokit info "$2" --json
  expect_eq "$1 region $3 (BAR $3) size" "$(region_size "$3")" "$(bar_size "$2" "$3")"
  case " $(region_caps "$3") " in *" msix-mappable "*) ;; *) check_fail "$1 region $3 lacks the MSI-X-mappable capability (has: $(region_caps "$3"))" ;; esac
  expect_eq "$1 MSI-X vector count" "$(irq_count 2)" "$4"
}

nvme=$(dev nvme)
check_msix_bar NVMe "$nvme" 0 65
expect_eq "NVMe config region size" "$(region_size 7)" 4096
expect_eq "NVMe INTx count" "$(irq_count 0)" 1
expect vfiokit unbind "$nvme" --restore

e1000e=$(dev e1000e)
check_msix_bar e1000e "$e1000e" 3 5
expect vfiokit unbind "$e1000e" --restore
check_pass
