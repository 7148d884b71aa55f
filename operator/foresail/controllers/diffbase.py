"""kopf's diff base as digests, so that its annotation does not grow with the spec (issue 15, defect 9).

kopf remembers the last handled state of an object (its "essence": spec, labels, annotations) to tell a
change from a re-listing. Its ``AnnotationsDiffBaseStorage`` keeps a full copy of the essence in an
annotation, and the apiserver limits *all* annotations of an object to 256 KiB together: a spec over
about 256 KiB (less with the user's own annotations, or kubectl's last-applied copy) is admitted, then
every patch kopf makes to record it is refused (422 ``metadata.annotations: Too long``), the handler runs
again on the next event (each status write of the autoscaler is one), and so on forever.

Foresail's change handlers reconcile the whole object and read neither ``old`` nor ``diff``; kopf only
needs to know whether the spec (or the metadata) changed. ``DigestDiffBaseStorage`` keeps, per top-level
stanza of the essence, the SHA-256 of its canonical JSON (about 150 bytes whatever the spec's size). On
fetch it rebuilds the current essence: a stanza whose digest matches is returned as it is now (no diff),
one that differs is replaced by a marker holding the old digest (a diff on that stanza, so an
``on.update(field="spec")`` handler fires). An annotation in kopf's own format (a full essence, written
by an earlier version) is read as before and replaced by digests on the next store.

The handlers' ``field`` must lie inside a stanza that ``build`` keeps (spec, metadata): the essence is
rebuilt without kopf's extra fields on fetch, and cleared of the progress storage's annotations (the same
prefix) as kopf's processing clears the essence it stores.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

import kopf

__all__ = ["DIGESTS", "DigestDiffBaseStorage", "digest"]

DIGESTS = "foresail.dev/digests"  # the key of the stored object that marks it as digests, not an essence


def digest(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """``AnnotationsDiffBaseStorage`` storing a digest per stanza instead of the essence (see the module)."""

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        stored = super().fetch(body=body)
        old = cast(dict[str, Any], stored or {}).get(DIGESTS)
        if not isinstance(old, dict):
            return stored  # none yet, or a full essence written by kopf's own storage
        now = self.build(body=body)
        # as kopf's processing clears the essence it stores of the progress storage's annotations (same prefix)
        annotations = now.get("metadata", {}).get("annotations", {})
        self.remove_annotations(now, {k for k in annotations if self.prefix and k.startswith(f"{self.prefix}/")})
        self.remove_empty_stanzas(now)
        current = cast(dict[str, Any], now)
        out = {k: (current[k] if k in current and digest(current[k]) == d else {DIGESTS: d}) for k, d in old.items()}
        return cast(kopf.BodyEssence, out)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        digests = {DIGESTS: {k: digest(v) for k, v in essence.items()}}
        super().store(body=body, patch=patch, essence=cast(kopf.BodyEssence, digests))
