"""The RunPod dialect, as the registry sees it."""

from takeone.edge.auth import KEY_SCHEMES
from takeone.edge.dialects.base import Dialect
from takeone.edge.dialects.runpod import DIALECT, ROUTE, playground, routes, webhook

SPEC = Dialect(DIALECT, routes.install, webhook.render, (ROUTE,), routes.SCHEMAS,
               security={"bearer": KEY_SCHEMES["bearer"]},  # RunPod's clients send only a Bearer key
               label=playground.LABEL, place=playground.place)
