#!/bin/sh
# Check: IMS through the real kernel's IOMMU on the VFIO device cdev bound to iommufd:
# `vfiokit selftest --driver edu-ims ADDRESS --backend iommufd` builds a domain of 4096 slots whose message writes are edu
# DMAs into the status area, each followed by DMAs posting its summaries, and whose doorbell is
# edu's MSI (so the demux walks the summaries, as for any posting device), fires 64 slots in random order
# (each delivered once to its own handler), holds masked slots until unmask, refuses a message
# for the MSI window, and catches a message to an unmapped IOVA as a DMAR fault.
# configs: iommu
# timeout: 240
ims_edu_check iommufd
