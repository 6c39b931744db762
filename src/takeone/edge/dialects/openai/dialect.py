"""The OpenAI dialect, as the registry sees it."""

from takeone.edge.dialects.base import Dialect
from takeone.edge.dialects.openai import DIALECT, ROUTE, playground, routes, webhook

SPEC = Dialect(DIALECT, routes.install, webhook.render, (ROUTE,),
               label=playground.LABEL, place=playground.place)
