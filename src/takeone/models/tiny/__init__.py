"""The ``tiny`` profile: :mod:`.profile` (torch-free) and :mod:`.load` (builds the tiny LTX-2
model in-process). This package imports neither itself."""
