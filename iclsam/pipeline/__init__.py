"""Layer 4, the paper's protocol and the pipeline that reproduces its tables: the experiment grid
(`grid`, `cluster` on Dask), the protocol (`protocol`, `evaluate_folder`), the DVC stages and their
parameters, the report, the figures, and the training of our UniverSeg weights. Imports every
layer below it (common, method, apps, data)."""
