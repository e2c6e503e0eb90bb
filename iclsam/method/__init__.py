"""Layer 1, the method of the paper: Figure 1's steps (`figure1`) and the model that runs them
(`model.ICLSAM`), the confidence map (Eq. 2), the fusion (Eq. 1), the box prompts, the ICL
backends (`icl`), SAM (`sam`) and UniverSeg (`universeg`); label maps and weak context, which are
Figure 1 per label and SAM on weak annotations. Imports only `iclsam.common`."""
