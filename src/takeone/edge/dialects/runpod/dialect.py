"""The RunPod dialect, as the registry sees it."""

from takeone.edge.dialects.base import Dialect
from takeone.edge.dialects.runpod import DIALECT, ROUTE, playground, routes, webhook

SPEC = Dialect(DIALECT, routes.install, webhook.render, (ROUTE,), routes.SCHEMAS, security=("bearer",),
               label=playground.LABEL, place=playground.place)
