// {{name}}: a wasmgate `auth` plugin. Allows a request whose bearer key is listed in the
// config, as the subject the config names; denies anything else with an OpenAI 401.
// The logic imports no host function, so `node --test` runs it natively.

import { allow, bearerToken, deny, errorResponse, t } from "{{js_sdk}}";

export const schema = {
  // API key -> subject (who the caller is, as later plugins and logs see it).
  keys: t.map(t.string()),
  // Tenant to assign the caller to, if any.
  tenant: t.optional(t.string()),
};

export function configure(config) {
  if (Object.keys(config.keys).length === 0) throw "`keys` must list at least one key";
}

export function authenticate(config, req) {
  const token = bearerToken(req);
  if (token === undefined) {
    return deny(errorResponse(401, "You didn't provide an API key.", "invalid_request_error", "missing_api_key"));
  }
  // (For production, compare in constant time: see wasmgate's plugins/allowlist-js.)
  const subject = Object.hasOwn(config.keys, token) ? config.keys[token] : undefined;
  if (subject === undefined) {
    return deny(errorResponse(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"));
  }
  return allow({ subject, tenant: config.tenant });
}

export const Plugin = { schema, configure, authenticate };
