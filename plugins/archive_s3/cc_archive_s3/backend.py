"""`S3Archive`: the job archive in an S3 bucket (kind ``s3``), through obstore.

Object keys are the version-3 layout (``<cluster>/<lvl1>/<lvl2>/<start>/meta.json``, ``version.txt``, …).
A job becomes visible when its ``meta.json`` is written, which `ArchiveBase` does after the data object,
so a reader never sees half a job. Listings stream 1000 keys per request and batch loads keep
`io_concurrency` requests in flight.

Path-style (``https://endpoint/bucket/key``, what MinIO and moto want) or virtual-hosted
(``https://bucket.endpoint/key``, upstream's default) requests follow ``use-path-style``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import obstore
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

from cc_core.archive.backend import WALK_BATCH, ArchiveBase, JobLocation
from cc_core.archive.errors import ArchiveAccessError
from cc_core.archive.layout import is_hidden

if TYPE_CHECKING:
    from cc_core.context import PluginContext

DEFAULT_REGION = "us-east-1"


class S3ArchiveConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
    """The ``archive`` section for ``kind: s3`` (upstream `S3ArchiveConfig`, kebab-case keys).

    The camel-case spellings of upstream's archive-manager (``usePathStyle``, ``accessKey``,
    ``secretKey``) are accepted too. Secrets may be given as ``{"$env": "NAME"}``.
    """

    bucket: str
    endpoint: str = ""
    access_key: str = ""
    secret_key: str = ""
    region: str = ""
    use_path_style: bool = False
    use_path_style_alias: bool | None = msgspec.field(default=None, name="usePathStyle")
    access_key_alias: str = msgspec.field(default="", name="accessKey")
    secret_key_alias: str = msgspec.field(default="", name="secretKey")

    def __post_init__(self) -> None:
        if not self.bucket.strip():
            raise ValueError("`bucket` must not be empty")
        if self.use_path_style_alias is not None:
            self.use_path_style = self.use_path_style or self.use_path_style_alias
        self.access_key = self.access_key or self.access_key_alias
        self.secret_key = self.secret_key or self.secret_key_alias
        if bool(self.access_key) != bool(self.secret_key):
            raise ValueError("give both `access-key` and `secret-key`, or neither (environment credentials)")
        if self.endpoint and urlsplit(self.endpoint).scheme not in ("http", "https"):
            raise ValueError(f"`endpoint` must be an http(s) URL, got {self.endpoint!r}")

    def __repr__(self) -> str:  # never print the secret
        return f"S3ArchiveConfig(bucket={self.bucket!r}, endpoint={self.endpoint!r}, region={self.region!r})"


def store_options(cfg: S3ArchiveConfig) -> dict[str, Any]:
    """obstore `S3Store` keyword arguments for a config (exposed for tests and tools)."""
    opts: dict[str, Any] = {
        "region": cfg.region or DEFAULT_REGION,
        "virtual_hosted_style_request": not cfg.use_path_style,
    }
    if cfg.access_key:
        opts["access_key_id"] = cfg.access_key
        opts["secret_access_key"] = cfg.secret_key
    if cfg.endpoint:
        endpoint = cfg.endpoint.rstrip("/")
        if not cfg.use_path_style:
            # obstore expects the bucket in a virtual-hosted endpoint; the AWS SDK upstream uses adds it.
            parts = urlsplit(endpoint)
            if not parts.netloc.startswith(f"{cfg.bucket}."):
                endpoint = urlunsplit(parts._replace(netloc=f"{cfg.bucket}.{parts.netloc}"))
        opts["endpoint"] = endpoint
        opts["client_options"] = {"allow_http": endpoint.startswith("http://")}
    return opts


class S3Archive(ArchiveBase):
    """Job archive in an S3 (or S3-compatible) bucket."""

    kind = "s3"
    Config = S3ArchiveConfig
    io_concurrency = 32

    def __init__(
        self, config: S3ArchiveConfig, context: PluginContext | None = None, *, store: Any = None
    ) -> None:
        """``store`` replaces the S3 client by any obstore store (tests use `MemoryStore`)."""
        super().__init__(config, context)
        self.bucket = config.bucket
        if store is None:
            from obstore.store import S3Store

            opts = store_options(config)
            client_options = opts.pop("client_options", None)
            store = S3Store(config.bucket, client_options=client_options, **opts)
        self.store = store

    # ------------------------------------------------------------------ primitives

    def _display(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _error(self, key: str, e: Exception) -> ArchiveAccessError:
        msg = str(e).strip().split("\n", 1)[0]
        if isinstance(e, PermissionDeniedError | UnauthenticatedError):
            return ArchiveAccessError(self._display(key), f"permission denied: {msg}")
        return ArchiveAccessError(self._display(key), f"S3 request failed: {msg}")

    async def _read(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self.store, key)
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            return None
        except Exception as e:
            raise self._error(key, e) from None

    async def _write(self, key: str, data: bytes) -> None:
        try:
            await obstore.put_async(self.store, key, data)
        except Exception as e:
            raise self._error(key, e) from None

    async def _delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            await obstore.delete_async(self.store, list(keys))
        except FileNotFoundError:
            pass
        except Exception as e:
            raise self._error(keys[0], e) from None

    async def _exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self.store, key)
            return True
        except FileNotFoundError:
            return False
        except Exception as e:
            raise self._error(key, e) from None

    async def _list(self, prefix: str) -> tuple[list[str], dict[str, int]]:
        try:
            res = await obstore.list_with_delimiter_async(self.store, prefix or None)
        except Exception as e:
            raise self._error(prefix, e) from None
        cut = len(prefix) + 1 if prefix else 0
        dirs = [p[cut:].rstrip("/") for p in res["common_prefixes"]]
        files = {o["path"][cut:]: o["size"] for o in res["objects"]}
        return dirs, files

    async def _prepare(self) -> None:
        # Upstream checks the bucket with HeadBucket; a delimiter listing needs the same permission.
        try:
            await obstore.list_with_delimiter_async(self.store, None)
        except Exception as e:
            err = self._error("", e)
            raise ArchiveAccessError(
                f"s3://{self.bucket}", f"cannot access the bucket: {err.problem}"
            ) from None

    # ------------------------------------------------------------------ walks

    async def _walk(
        self, cluster: str | None = None, *, with_files: bool = False
    ) -> AsyncIterator[list[JobLocation]]:
        """One recursive listing per cluster; a job's objects are adjacent in the sorted listing."""
        clusters = [cluster] if cluster is not None else await self.get_clusters()
        batch: list[JobLocation] = []
        for c in clusters:
            current: JobLocation | None = None
            try:
                stream = obstore.list(self.store, f"{c}/", chunk_size=1000)
                async for chunk in stream:
                    for obj in chunk:
                        parts = obj["path"].split("/")
                        if len(parts) != 5 or any(is_hidden(p) for p in parts[1:4]):
                            continue
                        d = "/".join(parts[:4])
                        if current is None or current.dir != d:
                            try:
                                st = int(parts[3])
                            except ValueError:
                                continue
                            current = JobLocation(d, c, st, {})
                            batch.append(current)
                            if len(batch) > WALK_BATCH:
                                yield batch[:-1]
                                batch = batch[-1:]
                        assert current.files is not None
                        current.files[parts[4]] = obj["size"]
            except Exception as e:
                raise self._error(f"{c}/", e) from None
        if batch:
            yield batch
