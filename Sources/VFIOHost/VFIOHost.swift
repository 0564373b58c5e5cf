// VFIOHost: see architecture notes in README.md.
