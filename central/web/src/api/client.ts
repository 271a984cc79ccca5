// The typed API client: openapi-fetch over the types generated from central's /api/openapi.json (schema.d.ts;
// `make lint` fails when they are stale). The access token lives in this module's memory only; the refresh token is
// an HttpOnly cookie the page cannot read, used by /api/v1/auth/session/refresh.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

let accessToken: string | null = null;
let refreshing: Promise<boolean> | null = null;
let onSessionEnd: () => void = () => undefined;

export function setAccessToken(token: string | null): void {
  accessToken = token;
}
export function getAccessToken(): string | null {
  return accessToken;
}
export function onSessionEnded(fn: () => void): void {
  onSessionEnd = fn;
}

export const CSRF = { "X-GTX-CSRF": "1" } as const;

/** An API error, kept as its code; pages show `describeError(code)` (a sentence with what to do), never this. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

const auth: Middleware = {
  onRequest({ request }) {
    if (accessToken && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${accessToken}`);
    }
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "" });
api.use(auth);

let opening: Promise<boolean> | null = null;
/** The page load's session refresh, asked once: main.tsx starts it before React renders, AuthProvider awaits the
 * same promise (one round trip, not two, and not after the first render). */
export function openSession(): Promise<boolean> {
  opening ??= refreshSession();
  return opening;
}

/** Run a session refresh while no other tab of this site runs one (Web Locks). Every tab sends the one session
 * cookie, and the server rotates it on each refresh and ends the whole login when a rotated one comes back (a stolen
 * token's reuse): two tabs opened at once would otherwise log the household out. In turn, the second tab's request
 * carries the cookie the first one's answer set. */
function oneTabAtATime<T>(run: () => Promise<T>): Promise<T> {
  const locks = (navigator as { locks?: LockManager }).locks;
  return locks ? locks.request("gtx-session-refresh", run) : run();
}

/** Ask for a new access token with the session cookie; false when there is no session. */
export function refreshSession(): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const res = await oneTabAtATime(() =>
          fetch("/api/v1/auth/session/refresh", { method: "POST", headers: CSRF, credentials: "same-origin" }),
        );
        if (!res.ok) return false;
        const body = (await res.json()) as Schemas["AccessOut"];
        accessToken = body.access_token;
        sessionUser = body.user;
        return true;
      } catch {
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

export let sessionUser: Schemas["UserOut"] | null = null;
export function setSessionUser(u: Schemas["UserOut"] | null): void {
  sessionUser = u;
}

interface Result<D> {
  data?: D;
  error?: unknown;
  response: Response;
}

/** Run one call; on an expired access token refresh once and retry; throw ApiFailure on an error answer. */
export async function call<D>(run: () => Promise<Result<D>>): Promise<D> {
  let res: Result<D>;
  try {
    res = await run();
    if (res.response.status === 401 && accessToken) {
      if (await refreshSession()) res = await run();
      else {
        accessToken = null;
        onSessionEnd();
      }
    }
  } catch (e) {
    if (e instanceof ApiFailure) throw e;
    throw new ApiFailure(0, "network");
  }
  if (res.error !== undefined || !res.response.ok) {
    const err = res.error as { error?: { code?: unknown } } | undefined;
    const code = typeof err?.error?.code === "string" ? err.error.code : `http_${res.response.status}`;
    throw new ApiFailure(res.response.status, code);
  }
  return res.data as D;
}

export function idem(): { "Idempotency-Key": string } {
  return { "Idempotency-Key": crypto.randomUUID() };
}
