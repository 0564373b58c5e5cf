#!/bin/sh
# Check: two edu devices in different IOMMU groups share one IOMMU context, on the legacy
# container and, where the kernel has device cdevs, on one iommufd IOAS; one edu's DMA writes a
# buffer that the other edu's DMA reads back: `vfiokit context EDU0 EDU1 --backend B`.
# configs: iommu distro
first=$(dev edu0) second=$(dev edu-uio)
[ "$(group_of "$first")" != "$(group_of "$second")" ] || check_fail "edu0 and edu-uio share a group"
expect vfiokit bind "$first"
expect vfiokit bind "$second"
backends=legacy
cdev=$(ls "$(sysfs "$first")/vfio-dev" 2>/dev/null)
[ -n "$cdev" ] && [ -c "/dev/vfio/devices/$cdev" ] && backends="legacy iommufd"
for backend in $backends; do
  expect vfiokit context "$first" "$second" --backend "$backend"
  expect_steps "one context" "shared buffer"
done
expect vfiokit unbind "$first" --restore
expect vfiokit unbind "$second" --restore
check_pass
