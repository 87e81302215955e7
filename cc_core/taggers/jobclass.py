"""Job classification from archived statistics (upstream ``JobClassTagger``, contract §9).

``jobclasses/parameters.json`` is a map of shared parameters (numbers become floats, as Go decodes
them into ``map[string]any``); every other ``*.json`` file is one rule::

    {"name", "tag", "parameters": [names], "metrics": [names], "requirements": [bool exprs],
     "variables": [{"name", "expr"}], "rule": bool expr, "hint": Go template}

For a finished job the environment of a rule is: its parameters; ``job`` = ``{shared, duration,
numCores (= numHwthreads), numNodes, jobState, numAcc, smt}``; per listed metric ``{min, max, avg}`` from
the job's statistics plus ``limits {peak, normal, caution, alert}`` from the job's subcluster; then the
variables in order (each a float). A metric the job has no statistics for skips the rule; a failed or
erroring requirement or variable skips it too. If ``rule`` is true the job gets
``{type: "jobClass", name: <tag>, scope: "global"}`` and the hint, rendered over the environment with
every float rounded to two decimals, is one line of the job's ``metaData.message``.

Differences from upstream, all for robustness: rules are evaluated in file-name order (upstream: Go map
order, so the lines of a message come in random order); a metric missing from the subcluster's config
skips the rule (upstream dereferences a nil pointer); a rule naming a parameter that does not exist is
reported and skipped at load (as upstream), and so is a rule whose expressions or hint do not parse.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec

from cc_core.interfaces import TaggerResult
from cc_core.schema.job import Tag
from cc_core.taggers.expr import ExprEvalError, ExprSyntaxError, Program, compile_expr, go_round
from cc_core.taggers.gotemplate import Template, TemplateError, parse_template
from cc_core.taggers.rules import BUILTIN_DIR, HotRules, Problem, json_error_position, rule_files

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.schema import Job

log = logging.getLogger(__name__)

TAG_TYPE = "jobClass"
SITE_SUBDIR = Path("var/tagger/jobclasses")
PARAMETERS_FILE = "parameters.json"
LIMIT_KEYS = ("peak", "normal", "caution", "alert")


class Variable(msgspec.Struct):
    name: str
    expr: str


class RuleFile(msgspec.Struct):
    """A rule file as upstream decodes it (unknown keys ignored, missing ones empty)."""

    name: str = ""
    tag: str = ""
    parameters: list[str] = []
    metrics: list[str] = []
    requirements: list[str] = []
    variables: list[Variable] = []
    rule: str = ""
    hint: str = ""


@dataclass(frozen=True, slots=True)
class JobClassRule:
    file: str
    name: str
    tag: str
    params: dict[str, Any]
    metrics: tuple[str, ...]
    requirements: tuple[Program, ...]
    variables: tuple[tuple[str, Program], ...]
    rule: Program
    hint: Template


@dataclass(frozen=True, slots=True)
class RuleSet:
    parameters: dict[str, Any]
    rules: tuple[JobClassRule, ...]


def _json_key(name: str) -> str | None:
    return name if name.endswith(".json") else None


def _as_go_json(value: Any) -> Any:
    """Numbers as Go's ``map[string]any`` decoding gives them: every JSON number is a float64."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: _as_go_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_go_json(v) for v in value]
    return value


def _load_parameters(paths: Sequence[Path], problems: list[Problem]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for path in paths:
        try:
            raw = path.read_bytes()
            data = msgspec.json.decode(raw, type=dict[str, Any])
        except OSError as e:
            problems.append(Problem(str(path), "", f"cannot read: {e}"))
            continue
        except msgspec.DecodeError as e:
            where, msg = json_error_position(raw, str(e))
            problems.append(Problem(str(path), where, msg))
            continue
        params.update(_as_go_json(data))
    return params


def compile_rule(raw: bytes, file: str, parameters: Mapping[str, Any]) -> JobClassRule:
    """One rule file → `JobClassRule`; raises `RuleLoadError` naming the position of the problem."""
    try:
        spec = msgspec.json.decode(raw, type=RuleFile)
    except msgspec.DecodeError as e:
        where, msg = json_error_position(raw, str(e))
        raise RuleLoadError(where, msg) from None
    if not spec.tag:
        raise RuleLoadError("$.tag", "a rule needs a non-empty tag")
    params: dict[str, Any] = {}
    for p in spec.parameters:
        if p not in parameters:
            raise RuleLoadError("$.parameters", f"unknown parameter {p!r} (not in parameters.json)")
        params[p] = parameters[p]

    def expr(src: str, where: str) -> Program:
        try:
            return compile_expr(src)
        except ExprSyntaxError as e:
            raise RuleLoadError(where, f"{e.message} at column {e.pos + 1} of {src!r}") from None

    requirements = tuple(expr(r, f"$.requirements[{i}]") for i, r in enumerate(spec.requirements))
    variables = tuple((v.name, expr(v.expr, f"$.variables[{i}].expr")) for i, v in enumerate(spec.variables))
    rule = expr(spec.rule, "$.rule")
    try:
        hint = parse_template(spec.hint)
    except TemplateError as e:
        raise RuleLoadError("$.hint", f"{e.message} at column {e.pos + 1}") from None
    return JobClassRule(
        file=file,
        name=spec.name,
        tag=spec.tag,
        params=params,
        metrics=tuple(spec.metrics),
        requirements=requirements,
        variables=variables,
        rule=rule,
        hint=hint,
    )


class RuleLoadError(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def load_jobclass_rules(dirs: Sequence[Path]) -> tuple[RuleSet, list[Problem]]:
    """``parameters.json`` of every directory (merged, later wins), then the rule files."""
    problems: list[Problem] = []
    param_files = [d / PARAMETERS_FILE for d in dirs if (d / PARAMETERS_FILE).is_file()]
    parameters = _load_parameters(param_files, problems)
    by_tag: dict[str, JobClassRule] = {}
    for name, path in sorted(rule_files(dirs, _json_key).items()):
        if name == PARAMETERS_FILE:
            continue
        try:
            rule = compile_rule(path.read_bytes(), str(path), parameters)
        except OSError as e:
            problems.append(Problem(str(path), "", f"cannot read: {e}"))
            continue
        except RuleLoadError as e:
            problems.append(Problem(str(path), e.where, e.message))
            continue
        if rule.tag in by_tag:
            log.warning("tagger jobclasses: %s redefines tag %r of %s", path, rule.tag, by_tag[rule.tag].file)
        by_tag[rule.tag] = rule
    return RuleSet(parameters, tuple(by_tag.values())), problems


def round2(x: float) -> float:
    """One float as upstream's ``roundEnv`` rounds it: two decimals, half away from zero."""
    return go_round(x * 100) / 100 if math.isfinite(x) else x


def round_env(value: Any) -> Any:
    """Upstream's ``roundEnv``: every float (also nested) rounded to two decimals, half away from 0."""
    if isinstance(value, float):
        return go_round(value * 100) / 100 if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: round_env(v) for k, v in value.items()}
    return value


def job_env(job: Job) -> dict[str, Any]:
    return {
        "shared": job.shared,
        "duration": job.duration,
        "numCores": job.num_hwthreads,
        "numNodes": job.num_nodes,
        "jobState": job.job_state,
        "numAcc": job.num_acc,
        "smt": job.smt,
    }


def _stat(st: Any, key: str) -> float:
    v = st.get(key, 0.0) if type(st) is dict or isinstance(st, Mapping) else getattr(st, key, 0.0)
    return float(v)


def metric_env(
    statistics: Mapping[str, Any], limits_config: Mapping[str, Any], metric: str
) -> dict[str, Any] | None:
    """``{min, max, avg, limits}`` of one metric, or None when statistics or limits are missing."""
    st = statistics.get(metric)
    if st is None:
        return None
    limits = metric_limits(limits_config, metric)
    if limits is None:
        return None
    return {"min": _stat(st, "min"), "max": _stat(st, "max"), "avg": _stat(st, "avg"), "limits": limits}


def metric_limits(limits_config: Mapping[str, Any], metric: str) -> dict[str, float] | None:
    mc = limits_config.get(metric)
    if mc is None:
        return None
    if type(mc) is dict:  # already converted (`JobClassTagger.limits_for` caches them): shared read-only
        return mc
    if isinstance(mc, Mapping):
        return {k: float(mc.get(k, 0.0)) for k in LIMIT_KEYS}
    return {k: float(getattr(mc, k, 0.0)) for k in LIMIT_KEYS}


def classify(
    ruleset: RuleSet,
    job: Job,
    statistics: Mapping[str, Any],
    limits_config: Mapping[str, Any],
) -> tuple[list[str], list[str]]:
    """The matching tags and their rendered hints for one job. Errors of one rule skip that rule."""
    tags: list[str] = []
    messages: list[str] = []
    jenv = job_env(job)
    metrics: dict[str, dict[str, Any] | None] = {}  # built once per job, shared read-only by the rules
    for r in ruleset.rules:
        env: dict[str, Any] = dict(r.params)
        env["job"] = jenv
        skip = False
        for m in r.metrics:
            if m not in metrics:
                metrics[m] = metric_env(statistics, limits_config, m)
            menv = metrics[m]
            if menv is None:
                log.debug("job %s: rule %s skipped: no statistics or limits for %s", job.id, r.tag, m)
                skip = True
                break
            env[m] = menv
        if skip:
            continue
        try:
            met = True
            for req in r.requirements:
                if not req.run_bool(env):
                    met = False
                    break
            if not met:
                continue
            for name, prog in r.variables:
                env[name] = prog.run_float(env)
        except ExprEvalError as e:
            log.debug("job %s: rule %s skipped: %s", job.id, r.tag, e)
            continue
        try:
            matched = r.rule.run_bool(env)
        except ExprEvalError as e:
            log.warning("job %s: rule %s (%s) failed: %s", job.id, r.tag, r.file, e)
            continue
        if not matched:
            continue
        tags.append(r.tag)
        try:
            # Upstream renders over roundEnv(env); rounding each float as it is printed is the same text.
            messages.append(r.hint.render(env, round2))
        except TemplateError as e:
            log.warning("job %s: hint of rule %s (%s) failed: %s", job.id, r.tag, r.file, e)
    return tags, messages


class JobClassTagger:
    """Classifies finished jobs by their statistics (event ``stop``: after the job was archived)."""

    kind: ClassVar[str] = "JobClassTagger"
    event: ClassVar[Literal["start", "stop"]] = "stop"

    def __init__(
        self,
        context: PluginContext | None = None,
        *,
        site_dir: Path | None = None,
        builtin_dir: Path | None = BUILTIN_DIR / "jobclasses",
        clusters: Any = None,
        check_interval: float = 1.0,
    ) -> None:
        if context is not None:
            if site_dir is None:
                site_dir = context.base_dir / SITE_SUBDIR
            if clusters is None:
                clusters = context.services.get("clusters")
        self.clusters = clusters
        self._limits: dict[tuple[int, str, str], dict[str, dict[str, float]]] = {}
        dirs = [d for d in (builtin_dir, site_dir) if d is not None]
        self.rules: HotRules[RuleSet] = HotRules(
            dirs, load_jobclass_rules, check_interval=check_interval, label="jobclasses"
        )

    @property
    def problems(self) -> list[Problem]:
        self.rules.get()
        return self.rules.problems

    def limits_for(self, job: Job) -> Mapping[str, Any]:
        """The derived metric configs of the job's subcluster (upstream ``GetMetricConfigSubCluster``)."""
        cluster = self.clusters.cluster(job.cluster) if self.clusters is not None else None
        if cluster is None:
            return {}
        sub = job.sub_cluster
        if not sub and job.resources:
            sub = cluster.subcluster_for_node(job.resources[0].hostname) or ""
        key = (id(cluster), job.cluster, sub)  # a reloaded cluster config is a new object
        cached = self._limits.get(key)
        if cached is None:
            cached = {}
            for name, mc in cluster.subcluster_metrics(sub).items():
                limits = metric_limits({name: mc}, name)
                if limits is not None:
                    cached[name] = limits
            if len(self._limits) > 1000:
                self._limits.clear()
            self._limits[key] = cached
        return cached

    def classify(self, job: Job) -> tuple[list[str], list[str]]:
        if not job.statistics:
            return [], []
        return classify(self.rules.get(), job, job.statistics, self.limits_for(job))

    async def match(self, job: Job) -> TaggerResult:
        """``job`` must carry its archived statistics (the archiver's meta, or ``meta.json``)."""
        tags, messages = self.classify(job)
        return TaggerResult(
            tags=[Tag(type=TAG_TYPE, name=t, scope="global") for t in tags],
            message="\n".join(messages) if messages else None,
        )
