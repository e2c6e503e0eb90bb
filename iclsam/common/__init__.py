"""Layer 0, shared by every other: atomic writes, checkpoints, devices, input checks, image readers,
Dice, resizing and Z-Norm. Imports nothing else of iclsam."""
