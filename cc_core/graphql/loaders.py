"""Per-request batching: one service call for a field that a list resolves per item (no N+1 queries).

Two mechanisms, both kept in the request context's ``cache``:

* **prefetch** — a list resolver that knows which item fields are selected loads them for the whole page
  at once: ``jobs`` asks the repository for the items' tags and metadata in the same round trip
  (``with_tags``/``with_metadata``), and `prefetch_job_fields` loads the distinct users of the page. The
  item resolvers then answer synchronously — no coroutine or task per item, which is most of the cost
  of completing a 50-row page.
* **DataLoader** — anywhere else (a single ``job``), the item resolver loads its key through a
  `strawberry.dataloader.DataLoader`, which batches all keys of one event-loop tick into one call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from cc_core.graphql.services import GraphQLContext

__all__ = ["get_loader", "job_tags", "job_user_data", "prefetch_job_fields"]

_MISSING = object()


def get_loader(
    context: GraphQLContext,
    name: str,
    batch: Callable[[list[Any]], Awaitable[Sequence[Any]]],
    *,
    cache_key_fn: Callable[[Any], Hashable] | None = None,
) -> DataLoader[Any, Any]:
    """The request's loader ``name``, created with ``batch`` on first use."""
    key = f"loader:{name}"
    loader = context.cache.get(key)
    if loader is None:
        loader = DataLoader(load_fn=batch, cache_key_fn=cache_key_fn)
        context.cache[key] = loader
    return loader


async def _tags_for(context: GraphQLContext, ids: list[int]) -> list[list[Any]]:
    found = await context.services.require("tags").of_jobs(context.user, ids)
    return [list(found.get(i, ())) for i in ids]


async def _users_for(context: GraphQLContext, names: Sequence[str]) -> dict[str, Any]:
    """Users by name (None for a name without a user row): one ``get_many`` query for all ``names``."""
    found = await context.services.require("users").get_many(names)
    return {n: found.get(n) for n in names}


def job_tags(context: GraphQLContext, job: Any) -> Any:
    """The job's visible tags: loaded with the page, else (awaitable) through the loader."""
    if job.tags is not None:
        return job.tags

    async def batch(ids: list[int]) -> list[list[Any]]:
        return await _tags_for(context, ids)

    return get_loader(context, "tags", batch).load(job.id)


def job_user_data(context: GraphQLContext, job: Any) -> Any:
    table: Mapping[str, Any] | None = context.cache.get("prefetch:users")
    if table is not None and job.user in table:
        return table[job.user]

    async def batch(names: list[str]) -> list[Any]:
        found = await _users_for(context, names)
        return [found[n] for n in names]

    return get_loader(context, "users", batch).load(job.user)


async def prefetch_job_fields(context: GraphQLContext, jobs: Sequence[Any], fields: frozenset[str]) -> None:
    """Load what the item fields ``fields`` of a job page need beyond the page itself (``userData``)."""
    if jobs and "userData" in fields:
        table = context.cache.setdefault("prefetch:users", {})
        names = sorted({j.user for j in jobs} - table.keys())
        table.update(await _users_for(context, names))
