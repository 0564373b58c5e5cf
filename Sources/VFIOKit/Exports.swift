/// A driver author imports VFIOKit alone: the PCI model (addresses, config space, capabilities) comes with it.
@_exported import PCI
