"""A fake Triton HTTP server (KServe v2 protocol) for ``foresail calibrate``'s and the warm-up's tests,
and Triton 2.51's metrics text.

One model ``m`` with an FP32 input of 4 values per item and dynamic batching up to ``max_batch``; an
inference takes ``base_ms + per_item_ms x batch``, one at a time (like one GPU), so throughput
saturates with concurrency as a real replica's does. The model can be loaded again with a config
override (explicit model control): its config then reads as loaded (``loads`` records them).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.http import send_json

__all__ = ["FakeTriton", "metrics_text"]


def metrics_text(
    model: str = "m",
    success: float = 0,
    rejected: float = 0,
    request_us: float = 0,
    queue_us: float = 0,
    compute_us: float = 0,
    pending: float = 0,
    quantiles_us: tuple[float, ...] | None = None,
    version: str = "1",
) -> str:
    """One model version's lines of ``/metrics`` as Triton 2.51 writes them (NaN as ``Nan``; compute
    split into its three phases; failures by reason); concatenate several for more models or versions."""
    lab = f'model="{model}",version="{version}"'
    q = quantiles_us or (float("nan"),) * 5
    lines = [
        "# HELP nv_inference_request_success Number of successful inference requests, all batch sizes",
        "# TYPE nv_inference_request_success counter",
        f"nv_inference_request_success{{{lab}}} {success:g}",
        "# TYPE nv_inference_request_failure counter",
        *(
            f'nv_inference_request_failure{{model="{model}",reason="{r}",version="{version}"}} {rejected if r == "REJECTED" else 0:g}'
            for r in ("BACKEND", "OTHER", "CANCELED", "REJECTED")
        ),
        "# TYPE nv_inference_count counter",
        f"nv_inference_count{{{lab}}} {success:g}",
        "# TYPE nv_inference_request_duration_us counter",
        f"nv_inference_request_duration_us{{{lab}}} {request_us:g}",
        "# TYPE nv_inference_queue_duration_us counter",
        f"nv_inference_queue_duration_us{{{lab}}} {queue_us:g}",
        "# TYPE nv_inference_compute_input_duration_us counter",
        f"nv_inference_compute_input_duration_us{{{lab}}} 0",
        "# TYPE nv_inference_compute_infer_duration_us counter",
        f"nv_inference_compute_infer_duration_us{{{lab}}} {compute_us:g}",
        "# TYPE nv_inference_compute_output_duration_us counter",
        f"nv_inference_compute_output_duration_us{{{lab}}} 0",
        "# TYPE nv_inference_pending_request_count gauge",
        f"nv_inference_pending_request_count{{{lab}}} {pending:g}",
        "# TYPE nv_inference_request_summary_us summary",
        f"nv_inference_request_summary_us_count{{{lab}}} {success:g}",
        f"nv_inference_request_summary_us_sum{{{lab}}} {request_us:g}",
        *(
            f'nv_inference_request_summary_us{{{lab},quantile="{qq}"}} {"Nan" if v != v else f"{v:g}"}'
            for qq, v in zip(("0.5", "0.9", "0.95", "0.99", "0.999"), q, strict=True)
        ),
    ]
    return "\n".join(lines) + "\n"


class FakeTriton:
    def __init__(
        self,
        base_ms: float = 2.0,
        per_item_ms: float = 0.5,
        max_batch: int = 8,
        dynamic_batching: bool = True,
        inputs: list[dict[str, Any]] | None = None,
    ) -> None:
        self.requests = 0
        self.inputs = inputs or [{"name": "INPUT", "datatype": "FP32", "shape": [-1, 4]}]
        self.seen: list[tuple[tuple[str, tuple[int, ...]], ...]] = []  # each inference's inputs: (datatype, shape)
        self.loads: list[dict[str, Any]] = []
        self.config: dict[str, Any] = {"name": "m", "max_batch_size": max_batch}
        if dynamic_batching:
            self.config["dynamic_batching"] = {"max_queue_delay_microseconds": 100}
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
                        "inputs": server.inputs,
                        "outputs": [{"name": "OUTPUT", "datatype": "FP32", "shape": [-1, 1]}],
                    })  # fmt: skip
                elif self.path == "/v2/models/m/config":
                    self._send(200, server.config)
                elif self.path == "/v2/models/m/ready":
                    self._send(200, {})
                else:
                    self._send(404, {"error": f"unknown path {self.path}"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v2/repository/models/m/load":
                    override = json.loads(json.loads(raw)["parameters"]["config"])
                    server.loads.append(override)
                    server.config = override
                    self._send(200, {})
                    return
                if self.path != "/v2/models/m/infer":
                    self._send(404, {"error": f"Request for unknown model: {self.path}"})
                    return
                header = raw[: int(self.headers.get("Inference-Header-Content-Length") or len(raw))]
                got = json.loads(header)["inputs"]
                batch = int(got[0]["shape"][0])
                with gpu:
                    server.seen.append(tuple((i["datatype"], tuple(i["shape"])) for i in got))
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
