// VFIODrivers: see architecture notes in README.md.
