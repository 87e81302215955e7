"""The NATS API (contract §7): job start/stop and node-state events from ``main.api-subjects``."""

from cc_core.natsapi.api import NatsAPI

__all__ = ["NatsAPI"]
