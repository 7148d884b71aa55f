"""A fake Triton HTTP server (KServe v2 protocol) for ``foresail calibrate``'s tests.

One model ``m`` with an FP32 input of 4 values per item and dynamic batching up to ``max_batch``; an
inference takes ``base_ms + per_item_ms x batch``, one at a time (like one GPU), so throughput
saturates with concurrency as a real replica's does.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.http import send_json

__all__ = ["FakeTriton"]


class FakeTriton:
    def __init__(self, base_ms: float = 2.0, per_item_ms: float = 0.5, max_batch: int = 8) -> None:
        self.requests = 0
        gpu = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                send_json(self, code, body)

            def do_GET(self) -> None:
                if self.path == "/v2/models/m":
                    self._send(200, {
                        "name": "m", "versions": ["1"], "platform": "python",
                        "inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [-1, 4]}],
                        "outputs": [{"name": "OUTPUT", "datatype": "FP32", "shape": [-1, 1]}],
                    })  # fmt: skip
                elif self.path == "/v2/models/m/config":
                    self._send(200, {"name": "m", "max_batch_size": max_batch})
                else:
                    self._send(404, {"error": f"unknown path {self.path}"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v2/models/m/infer":
                    self._send(404, {"error": f"Request for unknown model: {self.path}"})
                    return
                header = raw[: int(self.headers.get("Inference-Header-Content-Length") or len(raw))]
                batch = int(json.loads(header)["inputs"][0]["shape"][0])
                with gpu:
                    time.sleep((base_ms + per_item_ms * batch) / 1000.0)
                    server.requests += 1
                out = {"name": "OUTPUT", "datatype": "FP32", "shape": [batch, 1], "data": [0.5] * batch}
                self._send(200, {"model_name": "m", "model_version": "1", "outputs": [out]})

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
