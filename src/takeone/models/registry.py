"""Every profile by name, and the code that loads each model family (torch-free).

Adding a model family is a folder (``models/<family>/`` with ``profile.py`` and a
``load.py`` defining ``load_model``) plus one line in :data:`FAMILIES`; adding a profile of an
existing family is one entry in :data:`PROFILES`. This module imports only the families'
torch-free profile modules, so the API process can resolve recipes without torch; the
loaders are imported by name only when a worker asks for one (:func:`family_loader`).

Example::

    recipe = get_profile("ltx-2").recipe_for(task)
    load = family_loader("ltx2")          # imports takeone.models.ltx2.load (torch) now
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from takeone.models.ltx2.profile import ltx2_profile, ltx25_profile
from takeone.models.recipe import Profile
from takeone.models.tiny.profile import TINY
from takeone.models.wan.profile import wan_22_profile

# family -> module whose ``load_model(profile, device, weights, offload)`` builds its VideoModel
FAMILIES: Mapping[str, str] = {
    "ltx2": "takeone.models.ltx2.load",
    "wan": "takeone.models.wan.load",
    "tiny": "takeone.models.tiny.load",
}

PROFILES: Mapping[str, Profile] = {
    profile.name: profile for profile in (ltx2_profile(), ltx25_profile(), TINY, wan_22_profile())
}


def get_profile(name: str) -> Profile:
    """The registered profile called ``name``; a ``ValueError`` lists the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown model profile {name!r}; known profiles: {known}") from None


def family_loader(family: str) -> Callable[..., Any]:
    """The ``load_model`` function of ``family`` (imports that family's worker-side code)."""
    try:
        module = FAMILIES[family]
    except KeyError:
        raise ValueError(f"unsupported model family {family!r}; known: {', '.join(sorted(FAMILIES))}") from None
    loader: Callable[..., Any] = importlib.import_module(module).load_model
    return loader
