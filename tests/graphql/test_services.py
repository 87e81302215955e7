"""The service Protocols match `cc_core.db`'s repositories, so the database plugs in without adapters.

Checked by signature (name, kind and order of every parameter the resolvers pass), not by calling the
repositories: calling them against a real database is part 2's end-to-end suite.
"""

from __future__ import annotations

import inspect

import pytest

from cc_core.db import (
    JobRepository,
    NodeRepository,
    StatsRepository,
    TagRepository,
    UserConfigRepository,
    UserRepository,
)
from cc_core.graphql import services
from cc_core.graphql.errors import ServiceUnavailable

PAIRS = [
    (services.JobRepository, JobRepository),
    (services.StatsRepository, StatsRepository),
    (services.TagRepository, TagRepository),
    (services.UserRepository, UserRepository),
    (services.UserConfigRepository, UserConfigRepository),
    (services.NodeRepository, NodeRepository),
]


def _protocol_methods(protocol: type) -> list[str]:
    return [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]


@pytest.mark.parametrize(("protocol", "implementation"), PAIRS, ids=lambda p: p.__name__)
def test_database_repository_satisfies_protocol(protocol: type, implementation: type) -> None:
    for name in _protocol_methods(protocol):
        impl = getattr(implementation, name, None)
        assert impl is not None, f"{implementation.__name__}.{name} is missing"
        wanted = inspect.signature(getattr(protocol, name))
        actual = inspect.signature(impl)
        assert inspect.iscoroutinefunction(impl) == inspect.iscoroutinefunction(getattr(protocol, name)), name
        params = list(actual.parameters.values())
        for i, p in enumerate(wanted.parameters.values()):
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                assert p.name in actual.parameters, f"{implementation.__name__}.{name}: no keyword {p.name!r}"
                continue
            assert i < len(params), f"{implementation.__name__}.{name}: too few parameters"
            assert params[i].name == p.name or params[i].kind is inspect.Parameter.POSITIONAL_ONLY, (
                f"{implementation.__name__}.{name}: parameter {i} is {params[i].name!r}, expected {p.name!r}"
            )


def test_services_from_database_takes_every_repository() -> None:
    class FakeDb:
        jobs, stats, tags, users, user_config, nodes = ("j", "s", "t", "u", "c", "n")

    s = services.GraphQLServices.from_database(FakeDb(), metrics="m")
    assert (s.jobs, s.stats, s.tags, s.users, s.user_config, s.nodes, s.metrics) == (
        "j",
        "s",
        "t",
        "u",
        "c",
        "n",
        "m",
    )
    with pytest.raises(ServiceUnavailable, match=r"cluster configuration \(job archive\) is not available"):
        s.require("clusters")
