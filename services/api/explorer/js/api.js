// The JSON API, as a frontend uses it: every call goes through here, errors arrive as the
// API's {"error": {status, message, parameter}} and are thrown as ApiError with that message.
// What the server offers (optional endpoints, whether a token is needed) is read once from
// its OpenAPI document rather than guessed by calling and failing.

export class ApiError extends Error {
  constructor(status, message, parameter) {
    super(message);
    this.status = status;
    this.parameter = parameter;
  }
}

const TOKEN_KEY = "lookalike.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

async function call(method, path, { query, json, form, auth, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  if (auth && token()) headers.Authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(url, { method, headers, body, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `the API at ${location.origin} does not answer (${err.message})`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.message || `HTTP ${response.status}`,
      error.parameter);
  }
  return data;
}

export const get = (path, query, options) => call("GET", path, { query, ...options });
export const post = (path, options) => call("POST", path, options);
export const del = (path, options) => call("DELETE", path, options);

const enc = encodeURIComponent;

let described = null;

/** What this server offers, from /openapi.json: {paths: Set, tokenNeeded(path, method)}. */
export function capabilities() {
  described ??= get("/openapi.json").then((doc) => ({
    has: (path) => path in doc.paths,
    // The document lists an empty alternative ({}) when no token is configured.
    tokenNeeded: (path, method) => {
      const security = doc.paths[path]?.[method]?.security;
      return Array.isArray(security) && !security.some((s) => Object.keys(s).length === 0);
    },
    limits: {
      depth: doc.paths["/images/{id}/neighborhood"].get.parameters
        .find((p) => p.name === "depth").schema.maximum,
    },
  }));
  return described;
}

export const api = {
  image: (id) => get(`/images/${enc(id)}`),
  neighborhood: (id, depth, limit, signal) => get(`/images/${enc(id)}/neighborhood`,
    { depth, limit, layout: "spring" }, { signal }),
  // The one ranking across hash kinds: verified near-duplicates first, each saying why.
  duplicates: (id, k = 8) => get(`/images/${enc(id)}/duplicates`, { k }),
  lookalikes: (id, k = 8) => get(`/images/${enc(id)}/lookalikes`, { k }),
  findByTitle: (q, offset, limit) => get("/images", { q, offset, limit }),
  searchPicture: (file) => {
    const form = new FormData();
    form.append("image", file);
    return post("/search", { form });
  },
  path: (from, to, maxHops) => get("/paths", { from, to, max_hops: maxHops }),
  crawls: (offset, limit) => get("/crawls", { offset, limit }),
  crawl: (id) => get(`/crawls/${enc(id)}`),
  startCrawl: (body) => post("/crawls", { json: body, auth: true }),
  cancelCrawl: (id) => del(`/crawls/${enc(id)}`, { auth: true }),
  latestAnalysis: () => get("/analysis/jobs", { limit: 20 }),
  startAnalysis: () => post("/analysis/jobs", { json: {}, auth: true }),
  job: (id) => get(`/analysis/jobs/${enc(id)}`),
  community: (n, limit) => get(`/analysis/communities/${enc(n)}`, { limit }),
};
