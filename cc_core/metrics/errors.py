"""Errors of metric data loading whose messages are meant for the client (GraphQL, REST)."""

from __future__ import annotations

from cc_core.graphql.errors import GraphQLRequestError


class MetricDataError(GraphQLRequestError):
    """Metric data could not be loaded: no backend for the cluster, backend unreachable, archive missing
    the job, … The message names the job or cluster and the cause."""

    code = "METRIC_DATA"
    status_code = 422


class NoMetricBackend(MetricDataError):
    """No ``metric-store-external`` entry and no embedded store serves this cluster."""

    code = "NO_METRIC_BACKEND"
