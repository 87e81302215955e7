"""LTTB downsampling lives in the core (`cc_core.metrics.lttb`): the metric dispatcher resamples archived
jobs with the same code the store uses for live ones, so a plot looks the same whichever side served it.
Re-exported here for the store's modules and for existing imports."""

from cc_core.metrics.lttb import lttb, lttb_rows, target_length

__all__ = ["lttb", "lttb_rows", "target_length"]
