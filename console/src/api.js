// The native API over fetch, with the API key (if any) as X-Api-Key: one place for both.
const KEY_STORAGE = "graphrun.apiKey";

export const apiUrl = window.location.origin;

export function storedKey() {
  return window.localStorage.getItem(KEY_STORAGE) || "";
}

export function storeKey(key) {
  if (key) window.localStorage.setItem(KEY_STORAGE, key);
  else window.localStorage.removeItem(KEY_STORAGE);
}

export function authHeaders() {
  const key = storedKey();
  return key ? { "X-Api-Key": key } : {};
}

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && typeof body === "object" && "detail" in body ? body.detail : body;
    super(`${status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(path, { method = "GET", body, signal, key } = {}) {
  const headers = { ...(key !== undefined ? (key ? { "X-Api-Key": key } : {}) : authHeaders()) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(apiUrl + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// Every page of a cursor-paged native list (workflows), bounded so a huge store cannot hang the page.
export async function allPages(path, maxPages = 20) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < maxPages; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return items;
}
