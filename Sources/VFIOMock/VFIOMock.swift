// VFIOMock: see architecture notes in README.md.
