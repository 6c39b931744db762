"""The Kling-API dialect, as the registry sees it."""

from takeone.edge.dialects.base import Dialect
from takeone.edge.dialects.kling import DIALECT, ROUTES, auth, playground, routes, webhook

SPEC = Dialect(DIALECT, routes.install, webhook.render, ROUTES, routes.SCHEMAS, security=auth.SECURITY,
               label=playground.LABEL, place=playground.place)
