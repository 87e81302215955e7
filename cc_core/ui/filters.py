"""The job list's URL: upstream's filter parameters (``buildFilterPresets``, contract §14) ↔ GraphQL
``JobFilter``s, plus our own ``sort``/``order``/``page``/``itemsPerPage``.

A bookmarked upstream URL (``/monitoring/jobs/?cluster=fritz&state=running&duration=morethan-3600``)
opens the same list. Malformed values are dropped as upstream drops them, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cc_core.db.filters import (
    FloatRange,
    IntRange,
    JobFilter,
    MetricStatItem,
    OrderByInput,
    PageRequest,
    StringInput,
    TimeRange,
)
from cc_core.schema.job import JOB_STATES

# Job columns the list sorts by (upstream's Sorting.svelte); anything else is a footprint key.
SORT_COLUMNS: dict[str, str] = {
    "startTime": "Start time",
    "duration": "Duration",
    "numNodes": "Nodes",
    "numHWThreads": "HW threads",
    "numAcc": "Accelerators",
    "energy": "Energy",
    "jobId": "Job ID",
}
_FOOTPRINT_KEY = re.compile(r"^[a-zA-Z0-9_]+$")
MAX_PER_PAGE = 500
TEXT_FIELDS = ("user", "project", "jobName")


def _range(raw: str, *, floor: int = 1) -> tuple[int, int] | None:
    """``a-b``, ``lessthan-x`` or ``morethan-x`` → (from, to); 0 means open."""
    parts = raw.split("-")
    if len(parts) != 2:
        return None
    try:
        if parts[0] == "lessthan":
            return floor, int(parts[1])
        if parts[0] == "morethan":
            return int(parts[1]), 0
        return int(parts[0]), int(parts[1])
    except ValueError:
        return None


@dataclass
class ListQuery:
    """What the URL asks of the job list."""

    filters: list[JobFilter] = field(default_factory=list)
    sort: str = "startTime"
    order: str = "DESC"
    page: int = 1
    per_page: int = 50
    # The filter values as the form shows them (name → value or list of values).
    form: dict[str, Any] = field(default_factory=dict)

    @property
    def order_by(self) -> OrderByInput:
        kind = "col" if self.sort in SORT_COLUMNS else "foot"
        return OrderByInput(field=self.sort, type=kind, order=self.order)

    @property
    def page_request(self) -> PageRequest:
        return PageRequest(items_per_page=self.per_page, page=self.page)


def _multi(query: Mapping[str, Sequence[str]], name: str) -> list[str]:
    return [v for v in query.get(name, []) if v != ""]


def parse_list_query(query: Mapping[str, Sequence[str]], *, per_page: int = 50) -> ListQuery:
    """``query``: every value of every parameter (``request.query_params.dict()``)."""
    first = {k: v[0] for k, v in query.items() if v and v[0] != ""}
    out = ListQuery(per_page=per_page)
    form = out.form
    filters = out.filters

    for name, col in (("cluster", "cluster"), ("subCluster", "sub_cluster"), ("partition", "partition")):
        if name in first:
            filters.append(JobFilter(**{col: StringInput(eq=first[name])}))
            form[name] = first[name]
    if "project" in first:
        match = first.get("projectMatch", "eq")
        filters.append(JobFilter(project=_string_input(first["project"], match)))
        form["project"] = first["project"]
    if "jobName" in first:
        filters.append(JobFilter(job_name=StringInput(contains=first["jobName"])))
        form["jobName"] = first["jobName"]
    users = _multi(query, "user")
    if len(users) == 1:
        filters.append(JobFilter(user=_string_input(users[0], first.get("userMatch", "contains"))))
        form["user"] = users[0]
    elif users:
        filters.append(JobFilter(user=StringInput(in_=users)))
        form["user"] = users
    states = [s for s in _multi(query, "state") if s in JOB_STATES]
    if states:
        filters.append(JobFilter(state=states))
        form["state"] = states
    if first.get("shared") in ("none", "single_user", "multi_user"):
        filters.append(JobFilter(shared=first["shared"]))
        form["shared"] = first["shared"]
    if first.get("schedule") in ("interactive", "batch"):
        filters.append(JobFilter(schedule=first["schedule"]))
        form["schedule"] = first["schedule"]
    tags = [t for t in _multi(query, "tag") if t.isdigit()]
    if tags:
        filters.append(JobFilter(tags=[int(t) for t in tags]))
        form["tag"] = tags
    if "duration" in first and (r := _range(first["duration"], floor=0)):
        filters.append(JobFilter(duration=IntRange(from_=r[0], to=r[1])))
        form["duration"] = first["duration"]
    if "node" in first:
        filters.append(JobFilter(node=StringInput(contains=first["node"])))
        form["node"] = first["node"]
    for name, col in (
        ("numNodes", "num_nodes"),
        ("numHWThreads", "num_hwthreads"),
        ("numAccelerators", "num_accelerators"),
    ):
        if name in first and (r := _range(first[name])):
            filters.append(JobFilter(**{col: IntRange(from_=r[0], to=r[1])}))
            form[name] = first[name]
    if "energy" in first and (r := _range(first["energy"])):
        filters.append(JobFilter(energy=FloatRange(from_=float(r[0]), to=float(r[1]))))
        form["energy"] = first["energy"]
    db_ids = [v for v in _multi(query, "dbId") if v.isdigit()]
    if db_ids:
        filters.append(JobFilter(db_id=db_ids))
        form["dbId"] = db_ids
    job_ids = _multi(query, "jobId")
    if len(job_ids) == 1:
        filters.append(JobFilter(job_id=_string_input(job_ids[0], first.get("jobIdMatch", "eq"))))
        form["jobId"] = job_ids[0]
    elif job_ids:
        filters.append(JobFilter(job_id=StringInput(in_=job_ids)))
        form["jobId"] = job_ids
    if first.get("arrayJobId", "").isdigit():
        filters.append(JobFilter(array_job_id=int(first["arrayJobId"])))
        form["arrayJobId"] = first["arrayJobId"]
    if "startTime" in first and (t := _time_range(first["startTime"])):
        filters.append(JobFilter(start_time=t))
        form["startTime"] = first["startTime"]
    stats = []
    for entry in _multi(query, "stat"):
        parts = entry.split("-")
        if len(parts) == 3 and _FOOTPRINT_KEY.match(parts[0]) and (r := _range(f"{parts[1]}-{parts[2]}")):
            stats.append(
                MetricStatItem(metric_name=parts[0], range=FloatRange(from_=float(r[0]), to=float(r[1])))
            )
    if stats:
        filters.append(JobFilter(metric_stats=stats))
        form["stat"] = _multi(query, "stat")

    sort = first.get("sort", "startTime")
    if sort in SORT_COLUMNS or _FOOTPRINT_KEY.match(sort):
        out.sort = sort
    out.order = "ASC" if first.get("order", "").upper() == "ASC" else "DESC"
    out.page = _positive(first.get("page"), 1, 1_000_000)
    out.per_page = _positive(first.get("itemsPerPage"), per_page, MAX_PER_PAGE)
    return out


def _positive(raw: str | None, default: int, limit: int) -> int:
    if raw is None or not raw.isdigit() or int(raw) < 1:
        return default
    return min(int(raw), limit)


def _string_input(value: str, match: str) -> StringInput:
    if match == "contains":
        return StringInput(contains=value)
    if match == "startsWith":
        return StringInput(starts_with=value)
    if match == "endsWith":
        return StringInput(ends_with=value)
    if match == "in":
        return StringInput(in_=[value])
    return StringInput(eq=value)


def _time_range(raw: str) -> TimeRange | None:
    parts = raw.split("-")
    if len(parts) == 2:
        try:
            a, b = int(parts[0]), int(parts[1])
        except ValueError:
            return None
        return TimeRange(from_=datetime.fromtimestamp(a, UTC), to=datetime.fromtimestamp(b, UTC))
    if re.fullmatch(r"last\d{1,6}[mhd]", raw):
        return TimeRange(range=raw)
    return None
