"""Line-protocol ingest from NATS subjects (``metric-store.nats-subscriptions``, contract §8.1).

One connection, one subscription per configured subject, each with a *callback* (nats-py's async
iterator costs 2.4× more per message, SERVICES.md §4). A message body is a line-protocol batch handled
exactly like a ``/api/write`` body; the subscription's ``cluster-tag`` is the default cluster of lines
without a ``cluster`` tag. A bad message is logged and counted (there is nobody to answer), never
partially stored. The pending limits are raised well above nats-py's defaults so that a burst of
collectors is buffered rather than dropped as a slow consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .engine import MetricStoreEngine
from .lineprotocol import LineProtocolError

log = logging.getLogger(__name__)

PENDING_MSGS_LIMIT = 1_000_000
PENDING_BYTES_LIMIT = 1024 * 1024 * 1024


@dataclass(slots=True)
class NatsStats:
    """Messages handled and rejected since start."""

    messages: int = 0
    rejected: int = 0


def connect_options(nats_config: Any) -> dict[str, Any]:
    """nats-py ``connect`` keyword arguments from the core's ``nats`` section (address, user/password
    or a credentials file)."""
    opts: dict[str, Any] = {
        "servers": [nats_config.address],
        "name": "clustercockpit-metric-store",
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
    }
    if getattr(nats_config, "username", ""):
        opts["user"] = nats_config.username
        opts["password"] = nats_config.password
    if getattr(nats_config, "creds_file_path", ""):
        opts["user_credentials"] = nats_config.creds_file_path
    return opts


class NatsIngest:
    """See the module docstring. `start` connects and subscribes; `close` drains and disconnects."""

    def __init__(self, engine: MetricStoreEngine, nats_config: Any, subscriptions: Sequence[Any]) -> None:
        self.engine = engine
        self.nats_config = nats_config
        self.subscriptions = list(subscriptions)
        self.stats = NatsStats()
        self._nc: Any = None

    def _handler(self, subject: str, cluster: str | None) -> Callable[[Any], Awaitable[None]]:
        engine, stats = self.engine, self.stats

        async def on_message(msg: Any) -> None:
            stats.messages += 1
            try:
                engine.ingest(msg.data, cluster)
            except LineProtocolError as e:
                stats.rejected += 1
                log.warning("NATS %s: message rejected, nothing of it stored: %s", subject, e)
            except Exception:  # keep the subscription alive whatever one message does
                stats.rejected += 1
                log.exception("NATS %s: ingest failed", subject)

        return on_message

    async def start(self) -> None:
        import nats

        self._nc = await nats.connect(**connect_options(self.nats_config))
        for sub in self.subscriptions:
            await self._nc.subscribe(
                sub.subscribe_to,
                cb=self._handler(sub.subscribe_to, sub.cluster_tag or None),
                pending_msgs_limit=PENDING_MSGS_LIMIT,
                pending_bytes_limit=PENDING_BYTES_LIMIT,
            )
            log.info(
                "metric store: subscribed to NATS subject %r (default cluster %r)",
                sub.subscribe_to,
                sub.cluster_tag or None,
            )
        await self._nc.flush()

    async def close(self) -> None:
        """Handle what is already delivered (drain), then disconnect."""
        if self._nc is None:
            return
        try:
            await self._nc.drain()
        except Exception as e:  # already closed or the server went away: nothing left to drain
            log.debug("NATS drain: %s", e)
            await self._nc.close()
        self._nc = None
