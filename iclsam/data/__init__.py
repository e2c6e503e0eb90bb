"""Layer 3, the data: the paper's data sets and ours, from their official layouts to prepared task
folders (`prepare`, `sources`), splits, synthetic tasks, 2-D sets cut from volumes. Imports the
layers below it (common, method, apps)."""
