import { ApiFailure } from "./api/client";
import type { MessageKey, T } from "./i18n";

// Every API error code → a sentence a person understands, with what to do. Unknown codes get the generic sentence
// by HTTP status; the raw body is never shown.
const byCode: Record<string, MessageKey> = {
  network: "err.network",
  unauthorized: "err.unauthorized",
  token_expired: "err.unauthorized",
  invalid_token: "err.unauthorized",
  no_session: "err.unauthorized",
  invalid_refresh_token: "err.unauthorized",
  invalid_credentials: "err.invalid_credentials",
  email_not_verified: "err.email_not_verified",
  rate_limited: "err.rate_limited",
  claim_rate_limited: "err.claim_rate_limited",
  forbidden: "err.forbidden",
  not_found: "err.not_found",
  invalid_meter_key: "err.not_found",
  insufficient_balance: "err.insufficient",
  insufficient_escrow: "err.insufficient",
  too_many_waiting_deposits: "err.too_many_waiting_deposits",
  too_many_waiting_requests: "err.too_many_waiting_requests",
  invalid_input: "err.invalid_input",
  bad_request: "err.invalid_input",
  unavailable: "err.unavailable",
  internal: "err.internal",
  wallet: "err.wallet",
};

export function describeError(e: unknown, t: T): string {
  if (e instanceof ApiFailure) {
    const key = byCode[e.code];
    if (key) return t(key);
    if (e.status === 429) return t("err.rate_limited");
    if (e.status === 401) return t("err.unauthorized");
    if (e.status === 403) return t("err.forbidden");
    if (e.status === 404) return t("err.not_found");
    if (e.status === 409) return t("err.conflict");
    if (e.status === 400 || e.status === 422) return t("err.invalid_input");
    if (e.status >= 500) return t("err.internal");
    return t("err.generic", { code: e.code });
  }
  return t("err.wallet");
}
