"""Video models behind the Kling endpoints (the worker side).

Torch-free modules, safe to import in the API process: :mod:`.profiles` (which model and
recipe serve a request) and :mod:`.base` (the model contract, numpy only). The rest import
torch and diffusers and belong in the worker: :mod:`.loader` (``load_video_model``),
:mod:`.render` (``render``: request to MP4), :mod:`.ltx2` (the LTX-2 pipelines) and
:mod:`.tiny` (tiny random-weight LTX-2 for tests). This package imports none of them itself.
"""
