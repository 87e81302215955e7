// GraphQL over fetch to /query with the session cookie.
//
// The app's CSRFMiddleware blocks state-changing requests that the browser marks
// `Sec-Fetch-Site: cross-site`; a same-origin fetch is marked `same-origin` by the browser itself, so no
// token header is needed. `credentials: "same-origin"` sends the HttpOnly session cookie.

export class GraphQLError extends Error {
  constructor(message, errors) {
    super(message);
    this.errors = errors || [];
  }
}

/** Run `query` with `variables`; resolves to `data`, rejects with GraphQLError on any error. */
export async function gql(query, variables = {}, { signal } = {}) {
  const response = await fetch("/query", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ query, variables }),
    signal,
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLError(`GraphQL: HTTP ${response.status}`);
  }
  if (body.errors && body.errors.length) {
    throw new GraphQLError(body.errors.map((e) => e.message).join("; "), body.errors);
  }
  if (!response.ok) throw new GraphQLError(body.error || `GraphQL: HTTP ${response.status}`);
  return body.data;
}

/** The selection every metric plot needs from `jobMetrics`. */
export const JOB_METRIC_FIELDS = `name scope metric {
  unit { base prefix } timestep
  statisticsSeries { min mean max }
  series { hostname id data statistics { min avg max } }
}`;

/**
 * One request for the metrics of many jobs: jobs = [{id, metrics}], answer {id: [JobMetricWithName]}.
 * `jobMetrics` is non-null, so one job whose data cannot be loaded nulls the whole answer; only then
 * each job is asked for alone (in parallel), and a failed job's entry is an Error.
 */
export async function jobMetricsBatch(jobs, options = {}) {
  try {
    return await jobMetricsQuery(jobs, options);
  } catch (e) {
    if (jobs.length < 2) throw e;
    const parts = await Promise.all(
      jobs.map((j) => jobMetricsQuery([j], options).catch((err) => ({ [j.id]: err }))),
    );
    return Object.assign({}, ...parts);
  }
}

async function jobMetricsQuery(jobs, { scopes = ["node"], resolution = null } = {}) {
  const wanted = jobs.filter((j) => j.metrics.length);
  if (!wanted.length) return {};
  const parts = wanted.map(
    (j, i) => `j${i}: jobMetrics(id: ${JSON.stringify(String(j.id))}, metrics: $m${i}, scopes: $scopes${resolution ? ", resolution: $res" : ""}) { ${JOB_METRIC_FIELDS} }`,
  );
  const decl = wanted.map((_, i) => `$m${i}: [String!]`).join(", ");
  const query = `query(${decl}, $scopes: [MetricScope!]${resolution ? ", $res: Int" : ""}) { ${parts.join("\n")} }`;
  const variables = { scopes };
  wanted.forEach((j, i) => { variables[`m${i}`] = j.metrics; });
  if (resolution) variables.res = resolution;
  const data = await gql(query, variables);
  const out = {};
  wanted.forEach((j, i) => { out[j.id] = data[`j${i}`] || []; });
  return out;
}
