"""The pages beyond the job list and job view, in Chromium against a live server (`cc_core.testing.ui`):
start page, users/projects, user page, tags, settings (+ admin panel), search, login/logout.

Every load asserts no console errors, page errors, failed or 5xx requests (`assert_clean`); screenshots
go to ``$CC_SCREENSHOT_DIR`` (else a temporary directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cc_core.testing.ui import XSS, UISite, assert_clean

pytestmark = pytest.mark.service("chromium")

# page → (path, roles that may open it, a selector that shows it rendered)
PAGES: dict[str, tuple[str, set[str], str]] = {
    "home": ("/", {"user", "manager", "support", "admin"}, "#cc-clusters"),
    "users": ("/monitoring/users/", {"manager", "support", "admin"}, "#stats-table"),
    "projects": ("/monitoring/projects/", {"manager", "support", "admin"}, "#stats-table"),
    "user": ("/monitoring/user/ui-user", {"user", "manager", "support", "admin"}, "body[data-hist-ready]"),
    "tags": ("/monitoring/tags/", {"user", "manager", "support", "admin"}, ".cc-tag-group"),
    "settings": ("/config", {"user", "manager", "support", "admin"}, "#cc-user-settings"),
    "systems": ("/monitoring/systems/fritz", {"support", "admin"}, "body[data-plots-ready]"),
    "nodelist": ("/monitoring/systems/list/fritz", {"support", "admin"}, "body[data-plots-ready]"),
    "node": ("/monitoring/node/fritz/f0000", {"support", "admin"}, "body[data-plots-ready]"),
    "logs": ("/monitoring/logs", {"admin"}, "body[data-logs-ready]"),
    "status": ("/monitoring/status/fritz", {"admin"}, "body[data-plots-ready]"),
    "status-detail": ("/monitoring/status/detail/fritz", {"admin"}, "body[data-plots-ready]"),
    "dashboard": ("/monitoring/dashboard/fritz", {"support", "admin"}, "body[data-plots-ready]"),
    "analysis": (
        "/monitoring/analysis/fritz?startTime=last7d",
        {"support", "admin"},
        "body[data-plots-ready]",
    ),
}


def _expect_log_answer(page: Any) -> None:
    """Entries, or — on hosts without journalctl — the endpoint's 503 shown as a message (the browser
    logs that 503, which is the expected answer here, not a page problem)."""
    if page.locator("#log-msg:not(.d-none)").count():
        text = page.inner_text("#log-msg")
        assert "journalctl" in text or "No log entries" in text, text
        page.problems[:] = [p for p in page.problems if "503" not in p and "/frontend/logs/" not in p]


@pytest.mark.parametrize("role", ["user", "manager", "support", "admin"])
def test_pages_load_per_role(ui_site: UISite, chromium: Any, role: str, screenshot_dir: Path) -> None:
    page = ui_site.page(chromium, role)
    try:
        for name, (path, roles, ready) in PAGES.items():
            response = page.goto(f"{ui_site.base_url}{path}")
            assert response is not None
            if role not in roles:
                assert response.status == 403, (name, response.status)
                page.problems.clear()  # the browser logs the expected 403 of the document itself
                continue
            assert response.status == 200, (name, response.status)
            page.wait_for_selector(ready, state="attached", timeout=15000)
            if name == "user":  # the job list partial is loaded with htmx, its plots after it
                page.wait_for_selector("#job-table .cc-plot canvas", timeout=15000)
            if name in ("systems", "nodelist", "node"):  # plots, or a message; never an error banner
                assert page.locator("#sys-msg.d-none").count() == 1, page.inner_text("#sys-msg")
            if name == "analysis":  # the GraphQL part answered: heatmap and scatter plots drawn
                assert page.locator("#roofline-heatmap canvas").count() == 1
                assert page.locator("#analysis-scatter canvas").count() >= 1
            if name == "logs":
                _expect_log_answer(page)
            if role == "admin":
                page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)
            assert_clean(page)
        # The admin panel only for admins.
        page.goto(f"{ui_site.base_url}/config")
        assert (page.locator("#cc-admin-users").count() == 1) == (role == "admin")
        assert_clean(page)
    finally:
        page.context.close()


def test_home_counts_and_statistics_tables(ui_site: UISite, chromium: Any) -> None:
    page = ui_site.page(chromium, "admin")
    try:
        page.goto(f"{ui_site.base_url}/")
        row = page.locator("#cc-clusters tr[data-cluster=fritz] td")
        assert row.nth(2).inner_text().strip() == str(len(ui_site.jobs))
        page.goto(f"{ui_site.base_url}/monitoring/users/?sort=id&order=asc")
        ids = page.locator("#stats-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
        assert ids == sorted({j.user for j in ui_site.jobs})
        page.click("#stats-table th a[data-sort=totalJobs]")
        page.wait_for_url("**sort=totalJobs**")
        counts = page.locator("#stats-table tbody tr td:nth-child(3)").all_inner_texts()
        assert counts == sorted(counts, key=int, reverse=True) and sum(map(int, counts)) == len(ui_site.jobs)
        with page.expect_download() as download:
            page.click("#csv-export")
        text = Path(download.value.path()).read_text()
        assert text.splitlines()[0].startswith("user,name,totalJobs") and "ui-user" in text
        assert_clean(page)
    finally:
        page.context.close()


def test_user_page_other_user_forbidden(ui_site: UISite, chromium: Any) -> None:
    page = ui_site.page(chromium, "user")
    try:
        r = page.goto(f"{ui_site.base_url}/monitoring/user/someone-else")
        assert r is not None and r.status == 403
        page.goto(f"{ui_site.base_url}/monitoring/user/ui-user")
        page.wait_for_selector("#job-table tbody tr[data-job]")
        assert page.locator("#job-table tbody tr[data-job]").count() == 4
    finally:
        page.context.close()


def test_setting_persists_after_reload(ui_site: UISite, chromium: Any) -> None:
    page = ui_site.page(chromium, "manager")
    try:
        page.goto(f"{ui_site.base_url}/config")
        page.select_option("#s-plotConfiguration_plotsPerRow", "4")
        page.uncheck("#s-jobList_showFootprint")
        page.click("#cc-save-settings")
        page.wait_for_selector("#cc-settings-msg.alert-success")
        page.reload()
        assert page.locator("#s-plotConfiguration_plotsPerRow").input_value() == "4"
        assert not page.locator("#s-jobList_showFootprint").is_checked()
        # The job list honours it: no footprint column any more.
        page.goto(f"{ui_site.base_url}/monitoring/jobs/")
        page.wait_for_selector("#job-table tbody tr[data-job]")
        assert page.locator("#job-table th", has_text="Footprint").count() == 0
        page.wait_for_selector("#job-table .cc-plot canvas")  # leave only after the plots' request
        # A token for oneself.
        page.goto(f"{ui_site.base_url}/config")
        page.click("#cc-gen-jwt")
        page.wait_for_function("document.getElementById('cc-jwt').value.split('.').length === 3")
        assert_clean(page)
    finally:
        page.context.close()


def test_search(ui_site: UISite, chromium: Any) -> None:
    job = ui_site.jobs[1]
    page = ui_site.page(chromium, "admin")
    try:
        page.goto(f"{ui_site.base_url}/")
        page.fill("input[name=searchId]", f"jobId:{job.job_id}")
        page.press("input[name=searchId]", "Enter")
        page.wait_for_url(f"**/monitoring/jobs/?jobId={job.job_id}")
        page.wait_for_selector("#job-table tbody tr[data-job]")
        assert page.locator("#job-table tbody tr[data-job]").first.get_attribute("data-job") == str(job.id)
        page.goto(f"{ui_site.base_url}/search?searchId={job.job_id}")  # a bare number is a job id
        assert f"jobId={job.job_id}" in page.url
        page.goto(f"{ui_site.base_url}/search?searchId=ui-project")  # a bare project
        assert "project=ui-project" in page.url
        r = page.goto(f"{ui_site.base_url}/search?searchId=a:b:c")
        assert r is not None and r.status == 400
        page.problems.clear()
        assert_clean(page)
    finally:
        page.context.close()


def test_admin_adds_user_who_logs_in_and_out(ui_site: UISite, chromium: Any) -> None:
    admin = ui_site.page(chromium, "admin")
    try:
        admin.goto(f"{ui_site.base_url}/config")
        form = admin.locator("#cc-add-user")
        form.locator("[name=username]").fill("ui-new")
        form.locator("[name=password]").fill("s3cret-pass")
        form.locator("[name=name]").fill(f"New {XSS}")
        form.locator("button[type=submit]").click()
        admin.wait_for_selector("#cc-users tr[data-user=ui-new]", timeout=15000)
        assert XSS in admin.locator("#cc-users tr[data-user=ui-new]").inner_text()
        # The notice: set (with a probe), shown as text on the start page.
        admin.fill("#cc-notice-form textarea", f"Maintenance {XSS}")
        admin.click("#cc-notice-form button")
        admin.wait_for_selector("#cc-settings-msg.alert-success")
        admin.goto(f"{ui_site.base_url}/")
        assert XSS in admin.locator("#cc-notice").inner_text()
        assert admin.evaluate("window.__xss") is None
        assert_clean(admin)
    finally:
        admin.context.close()
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{ui_site.base_url}/config")
        page.fill("#username", "ui-new")
        page.fill("#password", "s3cret-pass")
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_selector("#cc-user-settings")
        assert page.locator("#cc-username").inner_text() == "ui-new"
        page.click("form[action='/logout'] button")
        page.wait_for_selector("text=Logout successful")
        page.goto(f"{ui_site.base_url}/config")
        assert page.locator("#password").count() == 1  # logged out: the login form again
    finally:
        context.close()


def test_xss_probes_render_as_text(ui_site: UISite, chromium: Any) -> None:
    page = ui_site.page(chromium, "admin")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/tags/")
        assert XSS in page.locator("main").inner_text()
        page.goto(f"{ui_site.base_url}/monitoring/user/ui-user")
        page.wait_for_selector("#job-table tbody tr[data-job]")
        assert XSS in page.locator("#job-table").inner_text()
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src=x]").count() == 0
        assert_clean(page)
    finally:
        page.context.close()


def test_admin_deletes_a_tag(ui_site: UISite, chromium: Any) -> None:
    """Last in this module: it removes the ``ui:demo`` tag from every job."""
    page = ui_site.page(chromium, "admin")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/tags/")
        item = page.locator(".cc-tag-group[data-type=ui] .cc-tag-item").first
        tag_id = item.get_attribute("data-tag")
        page.on("dialog", lambda d: d.accept())
        item.locator(".cc-tag-delete").click()
        page.wait_for_selector(".cc-tag-group[data-type=ui]", state="detached")
        page.reload()
        assert page.locator(f".cc-tag-item[data-tag='{tag_id}']").count() == 0
        assert_clean(page)
    finally:
        page.context.close()
    user = ui_site.page(chromium, "user")
    try:  # a plain user sees no delete button on global tags
        user.goto(f"{ui_site.base_url}/monitoring/tags/")
        assert user.locator(".cc-tag-delete").count() == 0
    finally:
        user.context.close()


def _series(page: Any, selector: str) -> list[int]:
    return [int(x or 0) for x in page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.series)")]


def test_node_views_draw_live_data_and_node_list_pages_and_selects_metrics(
    ui_site: UISite, chromium: Any, screenshot_dir: Path
) -> None:
    """The live part of the test site (running jobs, samples written to the metric store, node states):
    the node list (one ``nodeMetricsList``) draws series for the allocated nodes, pages, and keeps its
    metric selection (``nodeList_selectedMetrics:fritz`` via updateConfiguration); the overview and
    the node view draw series too."""
    from cc_core.testing.ui import IDLE_NODES, RUNNING

    page = ui_site.page(chromium, "support")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/systems/list/fritz")
        page.wait_for_selector("body[data-plots-ready]", state="attached")
        hosts = page.eval_on_selector_all("#node-table tbody tr", "rows => rows.map(r => r.dataset.host)")
        allocated = [h for _, hs in RUNNING for h in hs]
        assert sorted(hosts) == sorted(allocated + list(IDLE_NODES))
        for h in allocated:
            assert all(n > 0 for n in _series(page, f"#node-table tr[data-host={h}] .cc-plot")), h
            assert "1 running job(s)" in page.inner_text(f"#node-table tr[data-host={h}]")
        page.screenshot(path=str(screenshot_dir / "nodelist.png"), full_page=True)
        # Metric selection: just mem_used and cpu_load, stored, and the list shows those columns.
        page.click("#node-metric-btn")
        for box in page.locator("#node-metric-select input[data-metric]").all():
            box.set_checked(box.get_attribute("value") in ("cpu_load", "mem_used"))
        page.click("#node-metric-apply")
        page.wait_for_function(
            "document.querySelectorAll('#node-table thead th').length === 3", polling=200, timeout=15000
        )
        assert page.locator("#node-table thead th").all_inner_texts()[1:] == ["cpu_load", "mem_used"]
        # Paging: two nodes per page (the user setting), page 2 shows other hosts.
        r = page.request.post(
            f"{ui_site.base_url}/frontend/configuration/", form={"key": "nodeList_nodesPerPage", "value": "2"}
        )
        assert r.ok
        page.goto(f"{ui_site.base_url}/monitoring/systems/list/fritz?page=2")
        page.wait_for_selector("body[data-plots-ready]", state="attached")
        second = page.eval_on_selector_all("#node-table tbody tr", "rows => rows.map(r => r.dataset.host)")
        assert len(second) == 2 and set(second) <= set(hosts)
        assert page.locator("#sys-pager .page-item:not(.disabled) a").count() == 2  # « and »
        # Overview (one metric, every node with data) and a node of a running job.
        page.goto(f"{ui_site.base_url}/monitoring/systems/fritz?metric=mem_used")
        page.wait_for_selector("body[data-plots-ready]", state="attached")
        for h in allocated:
            assert _series(page, f".cc-node[data-host={h}] .cc-plot") == [1]
        page.goto(f"{ui_site.base_url}/monitoring/node/fritz/{allocated[0]}")
        page.wait_for_selector("body[data-plots-ready]", state="attached")
        assert all(n > 0 for n in _series(page, "#sys-plots .cc-plot"))
        assert page.inner_text("#node-running") == "1"
        assert_clean(page)
    finally:
        page.request.post(
            f"{ui_site.base_url}/frontend/configuration/",
            form={"key": "nodeList_nodesPerPage", "value": "10"},
        )
        page.context.close()


def test_status_shows_running_jobs_roofline_and_top_projects(
    ui_site: UISite, chromium: Any, screenshot_dir: Path
) -> None:
    """The Status tab: the running jobs on the roofline (jobsMetricStats over the metric store's
    samples: one point per job) and their projects with node counts; the totals drawn."""
    from cc_core.testing.ui import RUNNING

    page = ui_site.page(chromium, "admin")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/status/fritz")
        page.wait_for_selector("body[data-plots-ready]", state="attached")
        assert page.get_attribute("#status-roofline", "data-points") == str(len(RUNNING))
        assert page.locator("#status-roofline canvas").count() >= 1
        rows = page.locator("#status-top-projects tbody tr").all_inner_texts()
        projects = {r.split("\t")[1].strip(): r.split("\t")[2].strip() for r in rows}
        assert projects == {"ui-running": "2", "ui-other": "1"}
        assert page.locator("#status-cards").inner_text().count("3") >= 1  # 3 allocated nodes
        # node states over time: the axis spans the 24 h asked for, whatever the reports' times
        page.wait_for_selector("[data-chart=timed][data-x-range]", state="attached")
        lo, hi = map(float, page.get_attribute("[data-chart=timed]", "data-x-range").split())
        assert hi - lo == 86400
        page.screenshot(path=str(screenshot_dir / "status.png"), full_page=True)
        assert_clean(page)
    finally:
        page.context.close()
