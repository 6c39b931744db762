"""The Replicate dialect, as the registry sees it."""

from takeone.edge.dialects.base import Dialect
from takeone.edge.dialects.replicate import DIALECT, ROUTE, playground, routes, webhook

SPEC = Dialect(DIALECT, routes.install, webhook.render, (ROUTE,), routes.SCHEMAS,
               label=playground.LABEL, place=playground.place, page_data=playground.page_data())
