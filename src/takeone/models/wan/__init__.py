"""The Wan family: :mod:`.profile` and :mod:`.recipe` (torch-free), :mod:`.model`,
:mod:`.load`, :mod:`.decode` and :mod:`.tiny` (worker side). This package imports none of them itself."""
