"""Metric data in the core: which backend serves a job or node (the dispatcher), and archiving finished
jobs (the archiver). Upstream ``internal/metricdispatch`` and ``internal/archiver``.

Import the submodules directly (`cc_core.metrics.dispatcher`, `cc_core.metrics.archiver`); this package
module stays empty so that importing `cc_core.metrics.lttb` (the metric-store plugin does) is cheap.
"""
