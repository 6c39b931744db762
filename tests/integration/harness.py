"""Real parts for integration tests: a takeone server in its own process on a free port, a
local image server, and keys made in the server's own database."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from benchmarks.services.server import Server, free_port, running, server_env

__all__ = ["ImageServer", "Server", "free_port", "jpeg_bytes", "png_bytes", "running", "server_env"]


def png_bytes(size: tuple[int, int] = (320, 240), color: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int] = (640, 480)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 220)).save(buf, format="JPEG")
    return buf.getvalue()


class ImageServer:
    """Serves fixed files on 127.0.0.1 and counts the requests it got."""

    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        self.files = files
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                entry = outer.files.get(self.path)
                if entry is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                ctype, data = entry
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
