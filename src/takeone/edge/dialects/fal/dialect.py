"""The fal dialect, as the registry sees it."""

from takeone.edge.dialects.base import Dialect
from takeone.edge.dialects.fal import DIALECT, ROUTE, auth, playground, routes, webhook

SPEC = Dialect(DIALECT, routes.install, webhook.render, (ROUTE,), routes.SCHEMAS, security=auth.SECURITY,
               label=playground.LABEL, place=playground.place, page_data=playground.page_data())
