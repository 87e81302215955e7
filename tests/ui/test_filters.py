"""The job list's URL parameters (upstream's ``buildFilterPresets`` names) → JobFilters."""

from __future__ import annotations

import msgspec

from cc_core.auth.user import User
from cc_core.config import UIConfig
from cc_core.db.filters import FloatRange, IntRange, StringInput
from cc_core.ui.base import flatten_ui_config, metric_selection, navigation
from cc_core.ui.filters import parse_list_query
from cc_core.web import NavItem


def _q(**kw: object) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [str(v)] for k, v in kw.items()}


def test_upstream_bookmark_parameters() -> None:
    q = parse_list_query(
        _q(
            cluster="fritz",
            partition="main",
            user="alice",
            project="p1",
            state=["running", "completed", "bogus"],
            duration="morethan-3600",
            numNodes="2-4",
            energy="lessthan-10",
            startTime="last7d",
            tag=["3", "x"],
            stat=["flops_any_avg-10-100", "bad key-1-2"],
            jobId=["1", "2"],
            arrayJobId="77",
        )
    )
    flat: dict[str, object] = {}
    for f in q.filters:
        for name in f.__struct_fields__:
            value = getattr(f, name)
            if value is not None:
                flat[name] = value
    assert flat["cluster"] == StringInput(eq="fritz")
    assert flat["partition"] == StringInput(eq="main")
    assert flat["user"] == StringInput(contains="alice")
    assert flat["project"] == StringInput(eq="p1")
    assert flat["state"] == ["running", "completed"]
    assert flat["duration"] == IntRange(from_=3600, to=0)
    assert flat["num_nodes"] == IntRange(from_=2, to=4)
    assert flat["energy"] == FloatRange(from_=1.0, to=10.0)
    assert flat["start_time"].range == "last7d"  # type: ignore[attr-defined]
    assert flat["tags"] == [3]
    assert [m.metric_name for m in flat["metric_stats"]] == ["flops_any_avg"]  # type: ignore[attr-defined]
    assert flat["job_id"] == StringInput(in_=["1", "2"])
    assert flat["array_job_id"] == 77


def test_sort_page_and_bad_values() -> None:
    q = parse_list_query(_q(sort="duration", order="asc", page="3", itemsPerPage="10"))
    assert (q.order_by.field, q.order_by.type, q.order_by.order) == ("duration", "col", "ASC")
    assert (q.page, q.per_page) == (3, 10)
    q = parse_list_query(_q(sort="flops_any_avg"))
    assert q.order_by.type == "foot" and q.order == "DESC"
    q = parse_list_query(
        _q(sort="x; drop table job", page="-1", itemsPerPage="999999", duration="1-2-3", startTime="x-y")
    )
    assert q.sort == "startTime" and q.page == 1 and q.per_page == 500 and q.filters == []


def test_users_multi_means_in() -> None:
    q = parse_list_query(_q(user=["a", "b"]))
    assert q.filters[0].user == StringInput(in_=["a", "b"])


def test_navigation_per_role() -> None:
    def titles(roles: list[str]) -> list[str]:
        plugin = [NavItem("Plug", "/p", min_role="support")]
        return [n.title for n in navigation(User("u", roles=roles), ["c1"], plugin)]

    assert titles(["user"]) == ["My Jobs", "Jobs", "Tags"]
    assert titles(["manager"]) == ["My Jobs", "Jobs", "Tags", "Users", "Projects"]
    assert titles(["support"]) == [
        "My Jobs",
        "Jobs",
        "Tags",
        "Users",
        "Projects",
        "Nodes",
        "Analysis",
        "Plug",
    ]
    assert titles(["admin"])[-3:] == ["Status", "Logs", "Plug"]
    assert navigation(None, ["c1"]) == []


def test_ui_config_keys() -> None:
    ui = msgspec.convert(
        {
            "job-list": {"use-paging": True},
            "metric-config": {
                "job-list-metrics": ["a"],
                "clusters": [
                    {
                        "name": "c",
                        "job-list-metrics": ["b"],
                        "sub-clusters": [{"name": "s", "job-list-metrics": ["z"]}],
                    }
                ],
            },
        },
        UIConfig,
    )
    flat = flatten_ui_config(ui)
    assert flat["jobList_usePaging"] is True and flat["jobView_showRoofline"] is True
    assert metric_selection(flat, "jobListMetrics", "c", "s") == ["z"]
    assert metric_selection(flat, "jobListMetrics", "c", "t") == ["b"]
    assert metric_selection(flat, "jobListMetrics", "d") == ["a"]


def test_json_script_cannot_close_the_element() -> None:
    from cc_core.ui.base import json_script

    text = json_script({"name": "</script><script>alert(1)</script>", "a&b": "<!--"})
    assert "<" not in text and ">" not in text and "&" not in text
    import json

    assert json.loads(text) == {"name": "</script><script>alert(1)</script>", "a&b": "<!--"}


def test_footprint_levels_follow_thresholds() -> None:
    from cc_core.ui.footprint import level

    conf = {"peak": 100, "normal": 50, "caution": 20, "alert": 10}
    assert [level(v, conf) for v in (5, 15, 30, 60)] == ["alert", "caution", "normal", "good"]
    low = {**conf, "normal": 10, "caution": 50, "alert": 80, "lowerIsBetter": True}
    assert [level(v, low) for v in (5, 20, 60, 90)] == ["good", "normal", "caution", "alert"]
