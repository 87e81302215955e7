"""The demo site: generated offline, any size, and kept alive by a simulated scheduler and collector.

Upstream's demo downloads a tarball with a fixed job archive; here everything is generated, so it works
without a network and scales from a handful to millions of jobs:

* `cc_core.demo.site` — the clusters (``cluster.json`` with metric configs modelled on upstream's sample
  archive), the users with each role and the local admin ``demo`` / ``demo``;
* `cc_core.demo.series` — job archetypes and their time series (numpy, vectorised per job), with the
  statistics in ``data.json`` and ``meta.json`` computed from the very series written;
* `cc_core.demo.generate` — ``clustercockpit demo generate``: site files, archive, database via init-db;
* `cc_core.demo.simulate` — ``clustercockpit demo run``: the server with the embedded metric store, plus
  a scheduler (REST start/stop, node states) and a collector (line protocol) as asyncio tasks.

The job spread (users, projects, sizes, durations) comes from `cc_core.db.generate.generate_jobs`, the
archive writing from `cc_core.archive.generate`: one generator family for tests, benchmarks and demo.
"""
