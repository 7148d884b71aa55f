"""Container images built without a Docker engine, reproducibly, cached by the hash of their inputs.

    python -m hack.images build [--export]    build (or find cached) every image; --export: out/images/
    python -m hack.images lock                 pin Debian packages and wheels afresh (images/*.lock)
    python -m hack.images verify               build again in an empty cache: the same digests?

The inputs live in ``images/`` (what a user reads, like a Dockerfile): ``debian/packages.toml`` (the root
filesystem), each image's ``image.toml`` (repository, tag, config, users, app) and its ``requirements.lock``.
This package is the builder: ``debian`` (mmdebstrap), ``python`` (pinned wheels, the project's wheel),
``tritonserver`` (the server of the nvidia-pytriton wheel), ``layer`` (deterministic tar+gzip), ``oci``
(config, manifest, layout, archive), ``sbom`` (CycloneDX), ``cache`` and ``build``. Each step's directory
is ``~/.cache/foresail/images/<step>-<hash of its inputs>/``; the image layouts are under ``oci/``.
Standard library only; needs root (mmdebstrap's root mode, overlay mounts, chroot).
"""
