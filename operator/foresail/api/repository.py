"""Where an InferenceService's Triton model repository comes from (``spec.model.repository``: a PVC, a
ConfigMap, or a storageUri fetched by an init container) and what status records of a fetched one."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from foresail.api.meta import RELATIVE_PATH, SpecModel

__all__ = [
    "ARCHIVE_URI",
    "BUCKET_URI",
    "ConfigMapSource",
    "KeyToPath",
    "ModelStatus",
    "PvcSource",
    "RepositorySource",
    "S3Source",
    "pvc_ref",
]


class PvcSource(SpecModel):
    claim_name: str = Field(
        alias="claimName", min_length=1, max_length=253, description="PersistentVolumeClaim in the same namespace."
    )
    sub_path: str = Field(
        default="",
        alias="subPath",
        max_length=1024,
        pattern=f"^$|{RELATIVE_PATH}",
        description="Directory inside the claim holding the model repository (relative, no '..').",
    )


class KeyToPath(SpecModel):
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="ConfigMap key.")
    path: str = Field(min_length=1, max_length=1024, pattern=RELATIVE_PATH, description="File path in the volume (relative, no '..').")


class ConfigMapSource(SpecModel):
    name: str = Field(min_length=1, max_length=253, description="ConfigMap in the same namespace.")
    items: list[KeyToPath] = Field(
        default_factory=list,
        description="Key-to-path mapping as in a configMap volume (keys cannot hold '/', paths can build the repository tree).",
    )


# spec.model.repository.storageUri (RE2 and Python alike, so the CRD's CEL rule and the reconciler agree): an object
# store bucket with an optional prefix, or an http(s) URL of one archive
BUCKET_URI = r"^(s3|gs)://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$"
ARCHIVE_URI = r"^https?://[^\s/?#]+/[^\s?#]*\.(tar|tar\.gz|tgz|zip)(\?[^\s#]*)?$"
STORAGE_URI_MESSAGE = (
    "must be s3://bucket[/prefix], gs://bucket[/prefix], or an http(s):// URL of a .tar, .tar.gz, .tgz or .zip archive"
)
HOST_URL = r"^https?://[^\s/?#]+/?$"


class S3AddressingStyle(StrEnum):
    """How a bucket is addressed: ``path`` (``<endpoint>/<bucket>/<key>``, what S3-compatible stores such as
    SeaweedFS and MinIO serve by default) or ``virtual`` (``<bucket>.<endpoint host>/<key>``: AWS S3's
    preferred style, and the only one some stores, e.g. Alibaba OSS, accept)."""

    PATH = "path"
    VIRTUAL = "virtual"


class S3Source(SpecModel):
    """Where and how an ``s3://`` (or ``gs://``) storageUri is fetched: KServe's S3 settings, per service."""

    endpoint: str | None = Field(
        default=None,
        max_length=512,
        pattern=HOST_URL,
        description="S3 endpoint URL (scheme, host, port; no path), e.g. http://minio.storage:9000. "
        "Default: https://s3.<region>.amazonaws.com for s3://, https://storage.googleapis.com for gs://. "
        "Requests use path-style addressing (<endpoint>/<bucket>/<key>) unless addressingStyle is virtual.",
    )
    addressing_style: S3AddressingStyle = Field(
        default=S3AddressingStyle.PATH,
        alias="addressingStyle",
        description="path: <endpoint>/<bucket>/<key>; virtual: <bucket>.<endpoint host>/<key> (AWS's preferred "
        "style; over https a bucket name with dots does not match the endpoint's wildcard certificate).",
    )
    region: str = Field(
        default="us-east-1",
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9-]+$",
        description="Region the requests are signed for (AWS Signature Version 4); gs:// uses 'auto'.",
    )
    secret_name: str | None = Field(
        default=None,
        alias="secretName",
        min_length=1,
        max_length=253,
        description="Secret in the service's namespace with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(KServe's names; for gs:// an HMAC key of a service account). Absent: anonymous requests.",
    )


class RepositorySource(SpecModel):
    """Where the Triton model repository comes from: exactly one of pvc, configMap or storageUri."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.pvc) ? 1 : 0) + (has(self.configMap) ? 1 : 0) + (has(self.storageUri) ? 1 : 0) == 1",
                    "message": "exactly one of pvc, configMap or storageUri must be set",
                },
                {
                    "rule": f"!has(self.storageUri) || self.storageUri.matches(r'{BUCKET_URI}') "
                    f"|| self.storageUri.matches(r'{ARCHIVE_URI}')",
                    "message": f"storageUri {STORAGE_URI_MESSAGE}",
                    "fieldPath": ".storageUri",
                },
                {
                    "rule": f"!has(self.s3) || (has(self.storageUri) && self.storageUri.matches(r'{BUCKET_URI}'))",
                    "message": "s3 applies only to an s3:// or gs:// storageUri",
                    "fieldPath": ".s3",
                },
                {
                    "rule": f"!has(self.sha256) || (has(self.storageUri) && self.storageUri.matches(r'{ARCHIVE_URI}'))",
                    "message": "sha256 applies only to an http(s):// archive storageUri",
                    "fieldPath": ".sha256",
                },
            ]
        },
    )
    pvc: PvcSource | None = Field(default=None, description="A PersistentVolumeClaim holding the repository.")
    config_map: ConfigMapSource | None = Field(default=None, alias="configMap", description="A ConfigMap holding small models.")
    storage_uri: str | None = Field(
        default=None,
        alias="storageUri",
        max_length=2048,
        description="Fetched into an emptyDir by an init container (foresail storage-init, the operator's image) "
        "before Triton starts: s3://bucket/prefix (every object under the prefix; settings in s3), gs://bucket/prefix "
        "(Google Cloud Storage's S3-compatible XML API with an HMAC key), or an http(s):// URL of a .tar, .tar.gz, "
        ".tgz or .zip archive (checked against sha256 when given). The content digest is recorded in status.model.",
    )
    s3: S3Source | None = Field(default=None, description="Endpoint, region and credentials of an s3:// or gs:// storageUri.")
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Expected sha256 (hex) of an http(s) archive; a mismatch fails the fetch (ModelFetchFailed).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> RepositorySource:
        n = sum(x is not None for x in (self.pvc, self.config_map, self.storage_uri))
        if n != 1:
            raise ValueError("exactly one of pvc, configMap or storageUri must be set")
        uri = self.storage_uri
        bucket = uri is not None and re.fullmatch(BUCKET_URI, uri) is not None
        archive = uri is not None and re.fullmatch(ARCHIVE_URI, uri) is not None
        if uri is not None and not (bucket or archive):
            raise ValueError(f"storageUri {STORAGE_URI_MESSAGE}")
        if self.s3 is not None and not bucket:
            raise ValueError("s3 applies only to an s3:// or gs:// storageUri")
        if self.sha256 is not None and not archive:
            raise ValueError("sha256 applies only to an http(s):// archive storageUri")
        return self


def pvc_ref(pvc: PvcSource) -> str:
    """``<claimName>`` or ``<claimName>/<subPath>``: the pvc repository ``status.model.pvc`` names."""
    return f"{pvc.claim_name}/{pvc.sub_path}" if pvc.sub_path else pvc.claim_name


class ModelStatus(SpecModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    storage_uri: str = Field(default="", alias="storageUri", description="The storageUri the digest was fetched from.")
    pvc: str | None = Field(
        default=None,
        description="The pvc repository the digest was computed over (<claimName> or <claimName>/<subPath>), read in place "
        "by the replicas' init container at pod start.",
    )
    digest: str = Field(
        default="",
        description="sha256:<hex> of the repository's content: the sha256 of the sha256sum-style listing "
        "('<file sha256>  <relative path>' lines, sorted by path) of every file ('symlink:<sha256 of the target>  <path>' "
        "for a symbolic link, never followed), as the newest replica's init container reported it.",
    )
    files: int = Field(default=0, description="Files fetched (or, for a pvc, hashed).")
    bytes: int = Field(default=0, description="Bytes fetched (or, for a pvc, hashed).")

    @staticmethod
    def source_of(repo: RepositorySource) -> dict[str, str] | None:
        """The fields naming ``repo`` (``storageUri`` or ``pvc``, by field name); None for a configMap, whose
        content the operator reads itself."""
        if repo.storage_uri is not None:
            return {"storage_uri": repo.storage_uri}
        if repo.pvc is not None:
            return {"pvc": pvc_ref(repo.pvc)}
        return None

    def describes(self, repo: RepositorySource) -> bool:
        """Whether this digest was taken of ``repo`` (the same storageUri, or the same claim and subPath)."""
        src = self.source_of(repo)
        return src is not None and (self.storage_uri, self.pvc or "") == (src.get("storage_uri", ""), src.get("pvc", ""))
