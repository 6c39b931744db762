"""The LTX-2 family: :mod:`.profile` and :mod:`.recipe` (torch-free), :mod:`.model`,
:mod:`.load`, :mod:`.decode`, :mod:`.speedups`, :mod:`.warmup` and :mod:`.tiny` (worker side).
This package imports none of them itself."""
