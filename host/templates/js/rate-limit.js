// {{name}}: a wasmgate `rate-limit` plugin. At most `requests` requests per `window-ms` per
// caller (the subject an auth plugin established, else the client IP), counted by the
// gateway's quota store. The quota function is passed in (`useQuota`), so `node --test` runs
// the logic natively with a fake.

import { edit, errorResponse, mutate, respond, t } from "{{js_sdk}}";

export const schema = {
  // Requests allowed per window and caller.
  requests: t.integer(),
  // Window length in milliseconds.
  "window-ms": t.optional(t.integer(), 60000),
};

let quotaConsume = () => {
  throw new Error("no quota store: call useQuota(quotaConsume) first");
};

/** Gives the logic the host's `quotaConsume` (the entry file does). */
export function useQuota(consume) {
  quotaConsume = consume;
}

export function configure(config) {
  if (config.requests < 1 || config["window-ms"] < 1) throw "`requests` and `window-ms` must be at least 1";
}

/** Who is counted: the authenticated subject, else the client IP. */
export function caller(req) {
  return req.identity ? `subject:${req.identity.subject}` : `ip:${req.clientIp}`;
}

/** Admit with OpenAI-style `x-ratelimit-*` headers, or refuse with a 429 and `retry-after`. */
export function decide({ allowed, limit, remaining, resetMs }) {
  const headers = [
    ["x-ratelimit-limit-requests", String(limit)],
    ["x-ratelimit-remaining-requests", String(remaining)],
    ["x-ratelimit-reset-requests", `${resetMs}ms`],
  ];
  if (allowed) return mutate(headers.map(([n, v]) => edit.setResponseHeader(n, v)));
  const retry = ["retry-after", String(Math.ceil(Number(resetMs) / 1000))];
  return respond(
    errorResponse(429, `Rate limit reached: ${limit} requests per window. Retry later.`, "requests", "rate_limit_exceeded", [retry, ...headers]),
  );
}

export function admit(config, req) {
  const status = quotaConsume(caller(req), 1n, BigInt(config.requests), BigInt(config["window-ms"]));
  return { decision: decide(status), reservation: undefined };
}

/** Nothing to correct: a request costs 1 whatever its tokens were. */
export function settle() {}

export const Plugin = { schema, configure, admit, settle };
