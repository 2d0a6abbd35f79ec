// The public GraphQL API at /graphql (same origin), and the API key kept for this tab only.

const KEY = "usertrail.apiKey";

/** The server asked for a key (HTTP 401): dev mode needs none, any other mode does. */
export class NeedsKey extends Error {}

/** The API refused or failed the request; `code` is the error's extensions.code. */
export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

export const apiKey = () => sessionStorage.getItem(KEY);
export const forgetKey = () => sessionStorage.removeItem(KEY);
export function rememberKey(key) {
  sessionStorage.setItem(KEY, key.trim());
}

/** The `data` of a GraphQL operation; NeedsKey on 401, ApiError on any error. */
export async function gql(query, variables = {}) {
  const headers = { "content-type": "application/json", accept: "application/json" };
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  const response = await fetch("/graphql", {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the server answered HTTP ${response.status} without JSON`, "HTTP");
  }
  const first = body?.errors?.[0];
  if (response.status === 401) throw new NeedsKey(first?.message ?? "an API key is needed");
  if (first) throw new ApiError(first.message, first.extensions?.code ?? "ERROR");
  if (!response.ok) throw new ApiError(`the server answered HTTP ${response.status}`, "HTTP");
  return body.data;
}
