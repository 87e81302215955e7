"""Every shipped rule file loads and behaves as upstream's (one job that fires it, one that does not),
site directories override and hot-reload, and broken files are reported with file and position."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cc_core.schema.job import Job, JobStatistics
from cc_core.taggers.apps import AppTagger, detect_apps, load_app_rules
from cc_core.taggers.examples import (
    APP_SCRIPTS,
    JOBCLASS_STATS,
    QUIET_SCRIPT,
    REFERENCE_LIMITS,
    jobclass_statistics,
)
from cc_core.taggers.gotemplate import TemplateError, go_float, parse_template
from cc_core.taggers.jobclass import JobClassTagger, classify, load_jobclass_rules, round_env
from cc_core.taggers.rules import BUILTIN_DIR

APPS = sorted(p.stem for p in (BUILTIN_DIR / "apps").glob("*.txt"))
CLASSES = ["excessiveload", "highmemory", "lowload", "lowutilization", "memorybound"]


def _job(**kw: object) -> Job:
    fields: dict[str, object] = {
        "job_id": 1,
        "user": "u",
        "project": "p",
        "cluster": "fritz",
        "sub_cluster": "main",
        "start_time": 1_700_000_000,
        "num_nodes": 1,
        "num_hwthreads": 72,
        "resources": [],
        "duration": 3600,
        "job_state": "completed",
        "shared": "none",
        "id": 7,
    }
    fields.update(kw)
    return Job(**fields)  # type: ignore[arg-type]


def test_builtin_rules_are_upstreams_files(shared_reference: Path) -> None:
    """The package ships upstream's rule files unchanged (with its MIT notice)."""
    upstream = shared_reference / "configs" / "tagger"
    for sub in ("apps", "jobclasses"):
        names = sorted(p.name for p in (upstream / sub).iterdir())
        assert names == sorted(p.name for p in (BUILTIN_DIR / sub).iterdir())
        for n in names:
            assert (BUILTIN_DIR / sub / n).read_bytes() == (upstream / sub / n).read_bytes(), n
    assert "MIT License" in (BUILTIN_DIR / "LICENSE.upstream").read_text()


def test_all_builtin_rules_load_without_problems() -> None:
    apps, problems = load_app_rules([BUILTIN_DIR / "apps"])
    assert problems == [] and [a.name for a in apps] == APPS and all(a.patterns for a in apps)
    ruleset, problems = load_jobclass_rules([BUILTIN_DIR / "jobclasses"])
    assert problems == []
    assert sorted(r.tag for r in ruleset.rules) == CLASSES
    assert ruleset.parameters["job_min_duration_seconds"] == 600.0


# ------------------------------------------------------------------------------------------ apps


@pytest.mark.parametrize("app", APPS)
def test_each_app_fires_on_its_script_and_not_when_commented(app: str) -> None:
    rules, _ = load_app_rules([BUILTIN_DIR / "apps"])
    script = APP_SCRIPTS[app]
    assert detect_apps(rules, script) == [app]
    # The same lines commented out (whole line, or after a trailing '#') fire nothing.
    commented = "\n".join(
        "# " + line if i % 2 else "true # " + line for i, line in enumerate(script.splitlines())
    )
    assert detect_apps(rules, commented) == []


def test_app_matching_details() -> None:
    rules, _ = load_app_rules([BUILTIN_DIR / "apps"])
    assert detect_apps(rules, QUIET_SCRIPT) == []
    assert detect_apps(rules, "") == []
    # Lower-cased first; several apps at once, in file-name order.
    assert detect_apps(rules, "module load Python\nsrun GMX mdrun\n") == ["gromacs", "python"]
    # lammps is a real regex: \blmp\s+ (not a substring of 'mylmp', needs whitespace after).
    assert detect_apps(rules, "srun mylmp -in x\n") == []
    assert detect_apps(rules, "srun lmp_mpi -in x\n") == []
    assert detect_apps(rules, "srun lmp\t-in x\n") == ["lammps"]
    # starccm+ is a regex too: "starcc" followed by one or more "m".
    assert detect_apps(rules, "starccmm -batch\n") == ["starccm"]
    # A '#' earlier on the line hides the rest of the line, but not the next line.
    assert detect_apps(rules, "echo '#' julia\njulia x.jl\n") == ["julia"]
    assert detect_apps(rules, "echo '#' julia\n") == []
    # A long script without '#' stays fast (no quadratic backtracking on ^[^#]*).
    assert detect_apps(rules, "x " * 200_000 + "\nsrun vasp_std\n") == ["vasp"]


def test_app_tagger_reads_the_job_script() -> None:
    t = AppTagger(None)
    r = asyncio.run(t.match(_job(meta_data={"jobScript": APP_SCRIPTS["gromacs"]})))
    assert [(x.type, x.name, x.scope) for x in r.tags] == [("app", "gromacs", "global")] and r.message is None
    assert asyncio.run(t.match(_job(meta_data={"jobName": "x"}))).tags == []
    assert asyncio.run(t.match(_job(meta_data=None))).tags == []


def test_site_apps_override_add_and_hot_reload(tmp_path: Path) -> None:
    site = tmp_path / "var" / "tagger" / "apps"
    site.mkdir(parents=True)
    t = AppTagger(None, site_dir=site, check_interval=0)
    assert t.match_script("srun mycode\n") == []
    (site / "mycode.txt").write_text("mycode\n\n")
    (site / "gromacs.txt").write_text("")  # an empty file disables a built-in app
    (site / ".hidden.txt").write_text("srun\n")  # hidden files are not rules
    assert t.match_script("srun mycode\nsrun gmx mdrun\n") == ["mycode"]
    (site / "mycode.txt").write_text("other\n")
    os.utime(site / "mycode.txt", ns=(1, 1))  # a change is noticed by size or mtime
    assert t.match_script("srun mycode\n") == []
    (site / "broken.txt").write_text("ok\n(unclosed\n")
    assert t.match_script("ok\n") == ["broken"]  # the good pattern of the file still loads
    (problem,) = t.problems
    assert problem.file.endswith("broken.txt") and problem.where == "line 2, column 1"
    assert "invalid regular expression '(unclosed'" in problem.message


# ------------------------------------------------------------------------------------ job classes


@pytest.fixture(scope="module")
def ruleset():  # type: ignore[no-untyped-def]
    return load_jobclass_rules([BUILTIN_DIR / "jobclasses"])[0]


@pytest.mark.parametrize("tag", CLASSES)
def test_each_job_class_fires_and_does_not(ruleset, tag: str) -> None:  # type: ignore[no-untyped-def]
    tags, messages = classify(ruleset, _job(), jobclass_statistics(tag), REFERENCE_LIMITS)
    assert tags == [tag] and len(messages) == 1
    # The same statistics on a shared node, or a job of at most 600 s, fire nothing (requirements).
    assert classify(ruleset, _job(shared="single_user"), jobclass_statistics(tag), REFERENCE_LIMITS) == (
        [],
        [],
    )
    assert classify(ruleset, _job(duration=600), jobclass_statistics(tag), REFERENCE_LIMITS) == ([], [])
    # A metric without statistics skips the rules that need it.
    partial = {m: v for m, v in jobclass_statistics(tag).items() if m not in JOBCLASS_STATS[tag]}
    assert tag not in classify(ruleset, _job(), partial, REFERENCE_LIMITS)[0]


def test_healthy_job_fires_nothing(ruleset) -> None:  # type: ignore[no-untyped-def]
    assert classify(ruleset, _job(), jobclass_statistics(None), REFERENCE_LIMITS) == ([], [])


def test_hints_render_as_upstream(ruleset) -> None:  # type: ignore[no-untyped-def]
    stats = jobclass_statistics(None)
    stats["cpu_load"] = {"min": 1.0, "max": 20.0, "avg": 12.3456}
    stats["mem_used"] = {"min": 1.0, "max": 251.005, "avg": 100.0}
    tags, messages = classify(ruleset, _job(), stats, REFERENCE_LIMITS)
    assert tags == ["highmemory", "lowload"]
    assert messages == [
        "This job used high memory: peak memory usage 251.01 GB (98.05% of 256 GB node capacity), "
        "exceeding the 0.9 utilization threshold. Risk of out-of-memory conditions.",
        "This job was detected as low CPU load: average cpu load 12.35 is below the threshold 61.2 (0.85).",
    ]


def test_limits_come_from_the_subcluster_and_statistics_from_the_job(ruleset) -> None:  # type: ignore[no-untyped-def]
    from cc_core.services import ClusterCatalog
    from cc_core.testing.metric_contract import make_cluster

    cluster = make_cluster("fritz")
    for mc in cluster.sub_clusters[0].metric_config or []:
        lim = REFERENCE_LIMITS.get(mc.name, {})
        mc.peak, mc.alert = lim.get("peak", 0.0), lim.get("alert", 0.0)
    t = JobClassTagger(None, clusters=ClusterCatalog({"fritz": cluster}), check_interval=0)
    stats = {
        m: JobStatistics(min=v["min"], max=v["max"], avg=v["avg"])
        for m, v in jobclass_statistics("lowload").items()
    }
    assert t.classify(_job(statistics=stats)) == (
        ["lowload"],
        ["This job was detected as low CPU load: average cpu load 30 is below the threshold 61.2 (0.85)."],
    )
    assert t.classify(_job(statistics=None)) == ([], [])
    assert t.classify(_job(cluster="unknown", statistics=stats)) == ([], [])  # no limits: rules skipped


def test_evaluation_errors_skip_only_that_rule(tmp_path: Path, ruleset) -> None:  # type: ignore[no-untyped-def]
    site = tmp_path / "jobclasses"
    site.mkdir()
    (site / "zz_bad.json").write_text(
        '{"tag": "bad", "metrics": ["cpu_load"], "rule": "cpu_load.avg && true", "hint": "x"}'
    )
    rules, problems = load_jobclass_rules([BUILTIN_DIR / "jobclasses", site])
    assert problems == []
    assert classify(rules, _job(), jobclass_statistics("lowload"), REFERENCE_LIMITS)[0] == ["lowload"]


def test_broken_rule_files_are_reported_and_skipped(tmp_path: Path) -> None:
    site = tmp_path / "jobclasses"
    site.mkdir()
    (site / "a_json.json").write_text('{\n  "tag": "x",\n  "rule": "true",\n}\n')
    (site / "b_expr.json").write_text('{"tag": "y", "requirements": ["job.duration >"], "rule": "true"}')
    (site / "c_var.json").write_text(
        '{"tag": "z", "variables": [{"name": "v", "expr": "1 +* 2"}], "rule": "true"}'
    )
    (site / "d_hint.json").write_text('{"tag": "w", "rule": "true", "hint": "avg {{.x | printf}}"}')
    (site / "e_param.json").write_text('{"tag": "q", "parameters": ["nope"], "rule": "true"}')
    (site / "f_type.json").write_text('{"tag": "r", "metrics": "cpu_load", "rule": "true"}')
    (site / "g_ok.json").write_text(
        '{"tag": "fine", "rule": "job.numNodes >= 1", "hint": "{{.job.numNodes}} node"}'
    )
    rules, problems = load_jobclass_rules([BUILTIN_DIR / "jobclasses", site])
    got = {Path(p.file).name: (p.where, p.message) for p in problems}
    assert got["a_json.json"][0] == "line 4, column 1" and "trailing comma" in got["a_json.json"][1]
    assert got["b_expr.json"] == (
        "$.requirements[0]",
        "unexpected end of expression at column 15 of 'job.duration >'",
    )
    assert got["c_var.json"][0] == "$.variables[0].expr" and "column 4" in got["c_var.json"][1]
    assert got["d_hint.json"][0] == "$.hint" and "unsupported template action" in got["d_hint.json"][1]
    assert got["e_param.json"] == ("$.parameters", "unknown parameter 'nope' (not in parameters.json)")
    assert got["f_type.json"][1] == "Expected `array`, got `str` - at `$.metrics`"
    assert len(problems) == 6
    # The good files (built-in and site) still load and work.
    assert sorted(r.tag for r in rules.rules) == sorted([*CLASSES, "fine"])
    assert classify(rules, _job(), jobclass_statistics(None), REFERENCE_LIMITS) == (["fine"], ["1 node"])


def test_site_parameters_merge_over_builtin(tmp_path: Path) -> None:
    site = tmp_path / "jobclasses"
    site.mkdir()
    (site / "parameters.json").write_text('{"lowcpuload_threshold_factor": 0.2}')
    t = JobClassTagger(None, site_dir=site, check_interval=0)
    rules = t.rules.get()
    assert rules.parameters["lowcpuload_threshold_factor"] == 0.2
    assert rules.parameters["job_min_duration_seconds"] == 600.0
    assert classify(rules, _job(), jobclass_statistics("lowload"), REFERENCE_LIMITS) == ([], [])
    (site / "parameters.json").write_text('{"lowcpuload_threshold_factor": 0.9}')
    os.utime(site / "parameters.json", ns=(2, 2))
    assert classify(t.rules.get(), _job(), jobclass_statistics("lowload"), REFERENCE_LIMITS)[0] == ["lowload"]


# ------------------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.85, "0.85"),
        (600.0, "600"),
        (61.2, "61.2"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (float("inf"), "+Inf"),
        (float("nan"), "NaN"),
    ],
)
def test_go_float_printing(value: float, text: str) -> None:
    assert go_float(value) == text


def test_template_subset() -> None:
    t = parse_template("a {{.m.avg}} b {{- .n -}}  c {{/* note */}}{{.missing}} {{.}}")
    assert t.render({"m": {"avg": 1.5}, "n": 2}) == "a 1.5 b2c <no value> map[m:map[avg:1.5] n:2]"
    assert parse_template("plain").render({}) == "plain"
    for bad, pos in (("x {{.a", 2), ("{{if .a}}y{{end}}", 0), ('{{ printf "%.2f" .a }}', 0), ("{{}}", 0)):
        with pytest.raises(TemplateError) as e:
            parse_template(bad)
        assert e.value.pos == pos


def test_round_env_is_half_away_from_zero() -> None:
    assert round_env({"a": 2.675, "b": {"c": -0.125, "d": 3}, "e": "x", "f": 0.5 / 100}) == {
        "a": 2.68,  # 2.675 * 100 rounds to exactly 267.5 in float64 (Go too), then away from zero
        "b": {"c": -0.13, "d": 3},
        "e": "x",
        "f": 0.01,
    }
