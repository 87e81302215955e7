"""Config sections of the cc-metric-store plugin, with upstream's keys (contract §8.7)."""

from __future__ import annotations

import msgspec

from cc_core.config import parse_duration


class _S(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    pass


class Checkpoints(_S):
    file_format: str = "wal"
    directory: str = "./var/checkpoints"
    max_wal_size: int = 0

    def __post_init__(self) -> None:
        if self.file_format not in ("wal", "json", "avro"):
            raise ValueError(f'`file-format` must be "wal" or "json", got {self.file_format!r}')


class Cleanup(_S):
    mode: str = "delete"
    directory: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("delete", "archive"):
            raise ValueError(f'`mode` must be "delete" or "archive", got {self.mode!r}')


class NatsSubscription(_S):
    subscribe_to: str
    cluster_tag: str = ""


class Debug(_S):
    dump_to_file: str = ""
    gops: bool = False


class InternalStoreConfig(_S):
    retention_in_memory: str
    memory_cap: int
    num_workers: int = 0
    checkpoint_interval: str = "12h"
    checkpoints: Checkpoints = msgspec.field(default_factory=Checkpoints)
    cleanup: Cleanup = msgspec.field(default_factory=Cleanup)
    nats_subscriptions: list[NatsSubscription] = msgspec.field(default_factory=list)
    debug: Debug = msgspec.field(default_factory=Debug)

    def __post_init__(self) -> None:
        for key in ("retention_in_memory", "checkpoint_interval"):
            try:
                parse_duration(getattr(self, key))
            except ValueError as e:
                raise ValueError(f"`{key.replace('_', '-')}`: {e}") from None
        if self.memory_cap < 0:
            raise ValueError("`memory-cap` must be ≥ 0 (GB; 0 = no cap)")


class ExternalStoreConfig(_S):
    """A ``metric-store-external`` entry of kind ``cc-metric-store`` (upstream's keys, plus ``timeout``)."""

    scope: str
    url: str
    token: str = ""
    # Ours: seconds per HTTP request (upstream hard-codes 10 s).
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"`url` must start with http:// or https://, got {self.url!r}")
        if self.timeout <= 0:
            raise ValueError("`timeout` must be > 0 seconds")
