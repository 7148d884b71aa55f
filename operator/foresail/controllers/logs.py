"""The operator's log lines: plain text, or one JSON object per line (``FORESAIL_LOG_FORMAT=json``, the
chart's ``logFormat``) for log pipelines.

A JSON line carries ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, ``exception`` when there is
one, and the object it is about as ``namespace``/``name`` (and ``kind`` where known), from kopf's per-object
logger (``k8s_ref``) or else the ``namespace/name: `` prefix the operator's own messages start with. Lines about no object (start-up, the pass as a whole)
have neither.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

__all__ = ["FORMATS", "JsonFormatter", "configure"]

FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# "team-a/resnet: ..." - a DNS label, "/", a DNS subdomain, ": "
_PREFIX = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)/([a-z0-9]([-a-z0-9.]*[a-z0-9])?): ")


def _object(record: logging.LogRecord, message: str) -> dict[str, str]:
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, dict) and ref.get("name"):
        out = {"name": str(ref["name"])}
        if ref.get("namespace"):
            out["namespace"] = str(ref["namespace"])
        if ref.get("kind"):
            out["kind"] = str(ref["kind"])
        return out
    m = _PREFIX.match(message)
    return {"namespace": m.group(1), "name": m.group(3)} if m else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            **_object(record, message),
            "message": message,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    """The root logger's one handler on stderr, in ``fmt`` (one of ``FORMATS``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
