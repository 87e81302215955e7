"""The job list and the job view in Chromium against a live server (`cc_core.testing.ui`).

Every page load asserts no console errors, page errors, failed or 5xx requests (`assert_clean`).
Screenshots go to ``$CC_SCREENSHOT_DIR`` (else a temporary directory).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from cc_core.testing.ui import XSS, UISite, assert_clean

pytestmark = pytest.mark.service("chromium")

NAV = {
    "user": ["My Jobs", "Jobs", "Tags"],
    "manager": ["My Jobs", "Jobs", "Tags", "Users", "Projects"],
    "support": ["My Jobs", "Jobs", "Tags", "Users", "Projects", "Nodes", "Analysis"],
    "admin": ["My Jobs", "Jobs", "Tags", "Users", "Projects", "Nodes", "Analysis", "Status", "Logs"],
}


def _nav_titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#cc-nav-items .navbar-nav > li > a").all_inner_texts()]


def _own_job(site: UISite) -> int:
    return next(j.id for j in site.jobs if j.user == "ui-user" and j.id != site.xss_job)


def _wait_plots(page: Any) -> None:
    page.wait_for_selector("body[data-plots-ready]", timeout=15000)


@pytest.mark.parametrize("role", ["user", "manager", "support", "admin"])
def test_pages_load_for_each_role(ui_site: UISite, chromium: Any, role: str, screenshot_dir: Path) -> None:
    page = ui_site.page(chromium, role)
    try:
        page.goto(f"{ui_site.base_url}/monitoring/jobs/")
        page.wait_for_selector("#job-table .cc-plot canvas", timeout=15000)
        assert _nav_titles(page) == NAV[role]
        rows = page.locator("#job-table tbody tr[data-job]").count()
        # user: own 4 jobs; manager: project ui-project (all 6 finished); support/admin: + 2 running.
        assert rows == {"user": 4, "manager": 6}.get(role, 8)
        if role in ("admin", "user"):
            page.screenshot(path=str(screenshot_dir / f"jobs-{role}.png"), full_page=True)
        page.goto(f"{ui_site.base_url}/monitoring/job/{_own_job(ui_site)}")
        _wait_plots(page)
        if role == "admin":
            page.screenshot(path=str(screenshot_dir / "job.png"), full_page=True)
        assert_clean(page)
    finally:
        page.context.close()


def test_job_list_filter_sort_and_page_update_the_url(ui_site: UISite, chromium: Any) -> None:
    page = ui_site.page(chromium, "admin")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/jobs/")
        page.wait_for_selector("#job-table .cc-plot canvas")
        with page.expect_response(lambda r: "/monitoring/jobs/" in r.url and "jobName=" in r.url):
            page.fill("#f-jobName", "ui-job-1")
            page.press("#f-jobName", "Enter")
        page.wait_for_url("**jobName=ui-job-1**")
        page.wait_for_function("document.querySelectorAll('#job-table tbody tr[data-job]').length === 1")
        assert "cluster=" not in page.url  # empty filters stay out of the URL
        page.wait_for_selector("#job-table .cc-plot canvas")
        page.fill("#f-jobName", "")
        page.press("#f-jobName", "Enter")
        page.wait_for_function("document.querySelectorAll('#job-table tbody tr[data-job]').length === 8")
        page.select_option("#f-sort", "jobId")
        page.wait_for_url("**sort=jobId**")
        page.select_option("#f-order", "asc")
        page.wait_for_url("**order=asc**")
        page.wait_for_function(
            "(() => { const ids = [...document.querySelectorAll('#job-table tbody tr[data-job] td a.fw-bold')].map(a => +a.textContent);"
            " return ids.length === 8 && ids.every((v, i) => i === 0 || ids[i - 1] <= v); })()"
        )
        page.check("#f-state-failed")
        page.wait_for_url("**state=failed**")
        page.wait_for_function("document.querySelectorAll('#job-table tbody tr[data-job]').length === 1")
        # Back restores the previous list, plots drawn again.
        page.go_back()
        page.wait_for_url(lambda url: "state=failed" not in url)
        page.wait_for_function("document.querySelectorAll('#job-table tbody tr[data-job]').length === 8")
        page.wait_for_selector("#job-table tr[data-job] .cc-plot canvas")
        # Paging (the user setting jobList_usePaging): two per page, the next page link pushes page=2.
        _set(page, ui_site, "jobList_usePaging", True)
        page.goto(f"{ui_site.base_url}/monitoring/jobs/?itemsPerPage=2&sort=jobId&order=asc")
        page.wait_for_selector("#job-table .cc-plot canvas")
        first = page.locator("#job-table tbody tr[data-job]").first.get_attribute("data-job")
        page.locator("#job-table a[rel=next]").first.click()
        page.wait_for_url("**page=2**")
        page.wait_for_function(
            f"document.querySelector('#job-table tbody tr[data-job]').dataset.job !== '{first}'"
        )
        page.wait_for_function("document.getElementById('job-count').textContent === '8 jobs · 4 pages'")
        # A bookmarked upstream URL opens the same list.
        page.goto(
            f"{ui_site.base_url}/monitoring/jobs/?user=someone&duration=morethan-3600&startTime=last30d"
        )
        users = page.locator("#job-table tbody tr[data-job] .bi-person + a").all_inner_texts()
        assert users and set(users) == {"someone-else"}
        assert page.input_value("#f-user") == "someone" and page.input_value("#f-duration") == "morethan-3600"
        assert_clean(page)
    finally:
        _set(page, ui_site, "jobList_usePaging", False)
        page.context.close()


def _set(page: Any, site: UISite, key: str, value: Any) -> None:
    """Store a UI setting of the page's user (`POST /frontend/configuration/`, the settings page's way)."""
    response = page.request.post(
        f"{site.base_url}/frontend/configuration/", form={"key": key, "value": json.dumps(value)}
    )
    assert response.ok, response.text()


def _rows(page: Any) -> int:
    return int(page.locator("#job-table tbody tr[data-job]").count())


def test_job_list_scrolls_refreshes_picks_ranges_and_compares(
    ui_site: UISite, chromium: Any, screenshot_dir: Path
) -> None:
    """Upstream's default (no paging): a sentinel row loads the next page when revealed, the URL stays;
    the refresher re-fetches the table; the from/to picker writes upstream's ``startTime=<from>-<to>``;
    two checked jobs are compared in one ``jobsMetricStats`` plot per metric."""
    page = ui_site.page(chromium, "manager", height=700)
    try:
        page.clock.install()
        url = f"{ui_site.base_url}/monitoring/jobs/?itemsPerPage=2&sort=jobId&order=asc"
        page.goto(url)
        page.wait_for_selector("#job-table .cc-plot canvas")
        assert page.locator("#job-table .cc-pager").count() == 0
        for _ in range(6):
            if _rows(page) == 6:
                break
            # The sentinel may already be in view (and gone): scroll the window, compare with the
            # count from before the scroll.
            n = _rows(page)
            page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            page.wait_for_function(f"document.querySelectorAll('#job-table tbody tr[data-job]').length > {n}")
        assert _rows(page) == 6 and page.locator("#job-more").count() == 0
        assert page.url == url
        ids = [int(t) for t in page.locator("#job-table tbody tr[data-job] td a.fw-bold").all_inner_texts()]
        assert ids == sorted(ids) and len(set(ids)) == 6
        page.wait_for_function(
            "document.querySelectorAll('#job-table .cc-plot[data-job]').length > 0 && "
            "[...document.querySelectorAll('#job-table .cc-plot[data-job]')].every(c => c.querySelector('canvas'))"
        )

        # Refresher: 30 s → the table partial is fetched again (the fake clock jumps ahead).
        page.select_option("#job-refresh", "30")
        with page.expect_response(
            lambda r: "/monitoring/jobs/?" in r.url and r.request.headers.get("hx-target") == "job-table"
        ):
            page.clock.run_for(31_000)
        page.wait_for_function("document.querySelectorAll('#job-table tbody tr[data-job]').length === 2")
        page.select_option("#job-refresh", "0")

        # Compare two jobs.
        boxes = page.locator('#job-table input[name="compare"]')
        assert page.is_disabled("#compare-btn")
        boxes.nth(0).check()
        boxes.nth(1).check()
        assert page.inner_text("#compare-n") == "2"
        page.click("#compare-btn")
        page.wait_for_selector("#compare-plots .cc-compare-plot canvas")
        assert page.locator("#compare-plots .cc-compare-plot").count() >= 1
        assert str(ids[0]) in page.inner_text("#compare-msg")
        page.screenshot(path=str(screenshot_dir / "jobs-compare.png"), full_page=True)

        # Start-time range: from/to (UTC) → startTime=<from>-<to> in the URL and a matching list.
        start = min(j.start_time for j in ui_site.jobs)
        fmt = "%Y-%m-%dT%H:%M"
        page.fill("#f-start-from", time.strftime(fmt, time.gmtime(start - 60)))
        page.fill("#f-start-to", time.strftime(fmt, time.gmtime(start + 60)))
        page.wait_for_url(f"**startTime={(start - 60) // 60 * 60}-*")
        page.wait_for_function("document.querySelectorAll('#job-table tbody tr[data-job]').length === 1")
        page.wait_for_load_state("networkidle")
        page.reload()
        assert page.input_value("#f-start-from") == time.strftime(fmt, time.gmtime((start - 60) // 60 * 60))
        assert_clean(page)
    finally:
        page.context.close()


def test_job_view_draws_every_plot_with_data(ui_site: UISite, chromium: Any) -> None:
    page = ui_site.page(chromium, "user")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/job/{_own_job(ui_site)}")
        _wait_plots(page)
        cells = page.locator("#job-plots .cc-metric .cc-plot")
        assert cells.count() >= 6
        for i in range(cells.count()):
            cell = cells.nth(i)
            assert cell.locator("canvas").count() == 1
            assert int(cell.get_attribute("data-series") or 0) > 0
        assert page.locator("#job-roofline canvas").count() == 1
        assert page.locator("#job-polar canvas").count() == 1
        assert page.locator("#job-stats tbody tr").count() > 6
        assert "kWh" in page.locator("#job-energy").inner_text()
        assert page.locator("#job-co2").count() == 1
        # Scope selection: mem_bw per socket → two series.
        select = page.locator(".cc-metric[data-metric=mem_bw] select")
        select.select_option("socket")
        page.wait_for_function(
            "document.querySelector('.cc-metric[data-metric=mem_bw] .cc-plot').dataset.series === '2'"
        )
        assert_clean(page)
    finally:
        page.context.close()


def test_zoom_requests_a_finer_resolution(ui_site: UISite, chromium: Any) -> None:
    page = ui_site.page(chromium, "admin")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/job/{_own_job(ui_site)}")
        _wait_plots(page)
        cell = page.locator(".cc-metric[data-metric=flops_any] .cc-plot")
        assert cell.get_attribute("data-timestep") == "240"  # the default: the coarsest resolution
        over = cell.locator(".u-over")
        box = over.bounding_box()
        assert box is not None
        with page.expect_request(
            lambda r: r.url.endswith("/query") and '"res":60' in (r.post_data or "")
        ) as req:
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2, steps=5)
            page.mouse.up()
        body = json.loads(req.value.post_data or "{}")
        assert body["variables"]["metrics"] == ["flops_any"]
        page.wait_for_function(
            "document.querySelector('.cc-metric[data-metric=flops_any] .cc-plot').dataset.timestep === '60'"
        )
        assert_clean(page)
    finally:
        page.context.close()


def test_add_and_remove_a_tag(ui_site: UISite, chromium: Any) -> None:
    page = ui_site.page(chromium, "user")
    job = _own_job(ui_site)
    try:
        page.goto(f"{ui_site.base_url}/monitoring/job/{job}")
        _wait_plots(page)
        page.fill("#tag-form input[name=type]", "mine")
        page.fill("#tag-form input[name=name]", "<b>bold</b>")
        page.click("#tag-add")
        badge = page.locator("#job-tags .cc-tag", has_text="mine: <b>bold</b>")
        badge.wait_for()
        assert page.locator("#job-tags b").count() == 0
        page.reload()
        _wait_plots(page)
        badge = page.locator("#job-tags .cc-tag", has_text="mine: <b>bold</b>")
        assert badge.count() == 1
        badge.locator("button").click()
        page.wait_for_function(
            "![...document.querySelectorAll('#job-tags .cc-tag')].some(b => b.textContent.includes('mine:'))"
        )
        page.reload()
        _wait_plots(page)
        assert page.locator("#job-tags .cc-tag", has_text="mine:").count() == 0
        assert_clean(page)
    finally:
        page.context.close()


def test_stored_xss_renders_as_text(ui_site: UISite, chromium: Any, screenshot_dir: Path) -> None:
    page = ui_site.page(chromium, "admin")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/jobs/")
        page.wait_for_selector("#job-table .cc-plot canvas")
        assert XSS in page.locator("#job-table").inner_text()
        page.goto(f"{ui_site.base_url}/monitoring/job/{ui_site.xss_job}")
        _wait_plots(page)
        assert XSS in page.locator("#job-name").inner_text()
        assert XSS in page.locator("#job-tags").inner_text()
        assert XSS in page.locator("#job-message").text_content()
        assert XSS in page.locator("#job-script").text_content()
        page.screenshot(path=str(screenshot_dir / "job-xss.png"), full_page=True)
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src=x]").count() == 0
        assert_clean(page)
    finally:
        page.context.close()


def test_forbidden_missing_and_anonymous(ui_site: UISite, chromium: Any) -> None:
    other = next(j.id for j in ui_site.jobs if j.user == "someone-else")
    page = ui_site.page(chromium, "user")
    try:
        r = page.goto(f"{ui_site.base_url}/monitoring/job/{other}")
        assert r is not None and r.status == 403 and "403" in page.inner_text("main")
        r = page.goto(f"{ui_site.base_url}/monitoring/job/99999")
        assert r is not None and r.status == 404
        r = page.goto(f"{ui_site.base_url}/monitoring/job/abc")
        assert r is not None and r.status == 404
    finally:
        page.context.close()
    context = chromium.new_context()
    try:
        anon = context.new_page()
        r = anon.goto(f"{ui_site.base_url}/monitoring/jobs/?state=running")
        assert r is not None and r.status == 401
        target = anon.locator("form[action='/login'] input[name=redirect]").get_attribute("value") or ""
        assert target.startswith("/monitoring/jobs") and target.endswith("?state=running")
    finally:
        context.close()


def test_many_nodes_draw_a_statistics_band(ui_site: UISite, chromium: Any, screenshot_dir: Path) -> None:
    big = max(ui_site.jobs, key=lambda j: j.num_nodes)
    assert big.num_nodes == 10
    page = ui_site.page(chromium, "admin")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/job/{big.id}")
        _wait_plots(page)
        cell = page.locator(".cc-metric[data-metric=cpu_load] .cc-plot")
        assert cell.get_attribute("data-band") == "1" and cell.get_attribute("data-series") == "3"
        page.screenshot(path=str(screenshot_dir / "job-10-nodes.png"), full_page=True)
        assert_clean(page)
    finally:
        page.context.close()


def test_metric_selection_is_stored_per_user(ui_site: UISite, chromium: Any) -> None:
    page = ui_site.page(chromium, "support")
    try:
        page.goto(f"{ui_site.base_url}/monitoring/jobs/")
        page.wait_for_selector("#job-table .cc-plot canvas")
        page.click("#metric-select-btn")
        for box in page.locator("#metric-select input[data-metric]").all():
            if box.get_attribute("value") in ("mem_bw", "cpu_power"):
                box.check()
            else:
                box.uncheck()
        page.click("#metric-apply")
        page.wait_for_function(
            "[...document.querySelectorAll('#job-table thead th')].slice(3).map(t => t.textContent).join() === 'cpu_power,mem_bw'"
        )
        page.wait_for_selector("#job-table td:nth-child(4) .cc-plot canvas")
        page.reload()
        headers = page.locator("#job-table thead th").all_inner_texts()[3:]  # compare, job info, footprint
        assert headers == ["cpu_power", "mem_bw"]
        assert_clean(page)
    finally:
        page.context.close()


def test_job_view_lists_concurrent_jobs(ui_site: UISite, chromium: Any) -> None:
    """A shared-node job lists the jobs that ran on its first node meanwhile (GraphQL concurrentJobs),
    each a link, plus a link to the job list of all of them."""
    page = ui_site.page(chromium, "admin")
    try:
        shared = ui_site.jobs[1]
        page.goto(f"{ui_site.base_url}/monitoring/job/{shared.id}")
        page.wait_for_selector("#concurrent-list a", state="attached")
        page.click("#concurrent-tab")
        others = {str(j.job_id) for j in ui_site.jobs if j.id != shared.id}
        links = page.locator("#concurrent-list a").all_inner_texts()
        assert links and set(links) <= others | {str(shared.job_id)}
        assert int(page.inner_text("#concurrent-count")) == len(links)
        page.click("#concurrent-all")
        page.wait_for_url("**/monitoring/jobs/?cluster=fritz&jobId=*")
        page.wait_for_selector("#job-table tbody tr[data-job]")
        assert page.locator("#job-table tbody tr[data-job]").count() == len(links)
        # A job that does not share its nodes says so.
        page.goto(f"{ui_site.base_url}/monitoring/job/{ui_site.jobs[3].id}")
        page.wait_for_function("document.getElementById('concurrent-count').textContent === '0'")
        assert "Not a shared-node job" in page.inner_text("#job-concurrent")
        assert_clean(page)
    finally:
        page.context.close()
