"""The Segmind dialect, as the registry sees it (installed last: POST /v1/{slug} catches all)."""

from takeone.edge.dialects.base import Dialect
from takeone.edge.dialects.segmind import playground, routes, webhook
from takeone.edge.dialects.segmind.pricing import PriceTable
from takeone.edge.dialects.segmind.registry import ENDPOINTS

SPEC = Dialect(routes.DIALECT, routes.install, webhook.render, tuple(ENDPOINTS),
               tuple(spec.schema for spec in ENDPOINTS.values()), catch_all=True, prices=PriceTable,
               label=playground.LABEL, place=playground.place, page_data=playground.page_data())
