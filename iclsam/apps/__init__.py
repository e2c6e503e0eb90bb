"""Layer 2, applications built on the method: a folder of images (`segment`, with its staged
output folder), whole volumes from a few slices (`volumes`), checkpoints fetched for the user
(`fetch`). Imports the method and `iclsam.common`."""
