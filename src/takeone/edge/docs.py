"""``/docs`` (Swagger UI) and ``/redoc`` with their scripts and styles served by this server.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a machine
without internet access. The same pages are built here with asset URLs under
``/docs/assets``, served from the files the ``fastapi-offline`` package ships (MIT; the
Swagger UI and ReDoc bundles keep their own license headers). URLs carry the ASGI root path,
so the pages also work behind a reverse proxy that mounts the API under a prefix.

Example::

    app = FastAPI(docs_url=None, redoc_url=None)
    install(app)    # GET /docs, /docs/oauth2-redirect, /redoc, /docs/assets/*
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from takeone.edge.headers import page_csp

ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def assets_dir() -> Path:
    """The folder with ``swagger-ui-bundle.js``, ``swagger-ui.css``, ``redoc.standalone.js``."""
    return Path(str(files("fastapi_offline").joinpath("static")))


def install(app: FastAPI) -> None:
    """Add the two documentation pages and their assets (none of it in the OpenAPI document)."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    app.add_api_route("/docs", swagger_page, methods=["GET"], include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT_URL, oauth2_redirect, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc_page, methods=["GET"], include_in_schema=False)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def swagger_page(request: Request) -> HTMLResponse:
    """Swagger UI; a key typed into "Authorize" lives only as long as the page (never in
    the browser's storage, where any later visitor of the machine would find it)."""
    root, app = _root(request), request.app
    return _guarded(get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "persistAuthorization": False}))


async def oauth2_redirect() -> HTMLResponse:
    return _guarded(get_swagger_ui_oauth2_redirect_html())


async def redoc_page(request: Request) -> HTMLResponse:
    root, app = _root(request), request.app
    return _guarded(get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png", with_google_fonts=False),
        extra="; worker-src 'self' blob:")


def _guarded(page: HTMLResponse, extra: str = "") -> HTMLResponse:
    """The page with a policy that allows its own inline scripts by hash, nothing else."""
    page.headers["Content-Security-Policy"] = page_csp(bytes(page.body).decode(), extra)
    return page
