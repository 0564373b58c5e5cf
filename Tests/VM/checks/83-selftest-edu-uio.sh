#!/bin/sh
# Check: the edu sample driver runs to the end on uio_pci_generic (/dev/uio0; INTx through
# reads and writes of the UIO node): `vfiokit selftest --driver edu ADDRESS --backend uio` exits 0
# only if every step checked out.
# configs: iommu distro
address=$(dev edu-uio)
expect vfiokit bind "$address" --driver uio_pci_generic
[ -c /dev/uio0 ] || check_fail "no /dev/uio0 after binding edu-uio to uio_pci_generic"
expect vfiokit selftest --driver edu "$address" --backend uio
expect_steps identification liveness factorial "interrupt raise/ack" "stale view"
grep -q "^ok   stale view: after close, BAR 0 (mapped) read 0xffffffff; a write of 0x5a5a0000 through it landed in private memory (read back 0x5a5a0000); region closed" "$out" || check_fail "BAR 0 was not mapped, or its stale view did not read all ones and keep a stale write in private memory"
expect vfiokit unbind "$address" --restore
check_pass
