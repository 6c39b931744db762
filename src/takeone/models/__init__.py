"""Video models behind the API (the worker side), one folder per model family.

Torch-free, safe to import in the API process: :mod:`.recipe` (profiles, tiers, recipes),
:mod:`.registry` (``get_profile``, ``PROFILES``, which code loads which family),
:mod:`.weights` (which files a profile reads, ``pull``, memory plans) and each family's
``profile.py`` and ``recipe.py``. Worker side (torch, diffusers): :mod:`.loader`
(``load_video_model``), :mod:`.base` (the model contract), :mod:`.family_helpers` (helpers
every family shares) and the families :mod:`.ltx2`, :mod:`.wan` and :mod:`.tiny`. This
package imports none of them itself; the engine (:mod:`takeone.engine.render`) turns what a
model returns into a delivered MP4.
"""
