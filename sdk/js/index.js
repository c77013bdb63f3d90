// Write wasmgate policy plugins in JavaScript (componentize-js 0.23.0).
//
// A plugin is a module with the world's entry point written as plain functions over the WIT
// values (see types/policy.d.ts), and a small entry file that exports them:
//
//   // plugin.js: the file componentize-js builds (the only one that sees the host import)
//   import { log } from "wasmgate:policy/host@0.1.0";
//   import { exportAuth, useHost } from "../../sdk/js/index.js";
//   import { Allowlist } from "./allowlist.js";
//   useHost({ log });
//   export const { configure, authenticate } = exportAuth(Allowlist);
//
// The config is parsed once per instance in `configure` with `parseConfig` and a schema made
// of `t.*` fields; errors name the field (``invalid config at `keys[0].sha256`: ...``).
// Everything here runs natively too, so plugin logic is unit-tested with `node --test`.

/** An invalid config; `message` reads ``invalid config at `a.b[0]`: why``. */
export class ConfigError extends Error {
  constructor(path, why) {
    super(`invalid config${path ? ` at \`${path}\`` : ""}: ${why}`);
    this.path = path;
    this.why = why;
  }
}

function kind(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "number") return "a number";
  if (typeof v === "boolean") return "a boolean";
  return "a string";
}

const join = (path, key) => (path ? `${path}.${key}` : key);

function expect(pred, what) {
  return (v, path) => {
    if (!pred(v)) throw new ConfigError(path, `expected ${what}, found ${kind(v)}`);
    return v;
  };
}

/** Config field types: each is a function `(value, path) => converted value` that throws ConfigError. */
export const t = {
  string: () => expect((v) => typeof v === "string", "a string"),
  boolean: () => expect((v) => typeof v === "boolean", "a boolean"),
  number: () => expect((v) => typeof v === "number", "a number"),
  integer: () => expect((v) => Number.isInteger(v), "an integer"),
  /** One of the given strings. */
  oneOf: (...choices) => (v, path) => {
    if (!choices.includes(v)) {
      throw new ConfigError(path, `expected one of ${choices.map((c) => JSON.stringify(c)).join(", ")}, found ${JSON.stringify(v)}`);
    }
    return v;
  },
  list: (item) => (v, path) => {
    if (!Array.isArray(v)) throw new ConfigError(path, `expected an array, found ${kind(v)}`);
    return v.map((x, i) => item(x, `${path}[${i}]`));
  },
  /** A map from string keys to `item`. */
  map: (item) => (v, path) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new ConfigError(path, `expected an object, found ${kind(v)}`);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, item(x, join(path, k))]));
  },
  /** An object with exactly these fields (unknown keys are errors). */
  object: (fields) => (v, path) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new ConfigError(path, `expected an object, found ${kind(v)}`);
    for (const k of Object.keys(v)) {
      if (!(k in fields)) {
        throw new ConfigError(join(path, k), `unknown field (known fields: ${Object.keys(fields).map((f) => `\`${f}\``).join(", ")})`);
      }
    }
    const out = {};
    for (const [k, field] of Object.entries(fields)) {
      if (v[k] === undefined && !field.optional) throw new ConfigError(join(path, k), "missing field");
      out[k] = field(v[k], join(path, k));
    }
    return out;
  },
  /** `item`, or `fallback` when the key is absent or null. Fields are required otherwise. */
  optional: (item, fallback = undefined) =>
    Object.assign((v, path) => (v === undefined || v === null ? (fallback === undefined ? undefined : JSON.parse(JSON.stringify(fallback))) : item(v, path)), { optional: true }),
};

/**
 * Parses the JSON config `text` with `schema` (an object of `t.*` fields; keys as in the
 * JSON, kebab-case by convention). An empty string or `null` is `{}`.
 */
export function parseConfig(text, schema) {
  let raw;
  try {
    raw = text.trim() === "" ? null : JSON.parse(text);
  } catch (e) {
    throw new ConfigError("", `not JSON: ${e.message}`);
  }
  return t.object(schema)(raw ?? {}, "");
}

// Decisions and edits, as the componentize-js bindings represent WIT variants.
export const cont = () => ({ tag: "continue" });
export const mutate = (edits) => ({ tag: "mutate", val: edits });
export const respond = (response) => ({ tag: "respond", val: response });
export const allow = (identity) => ({ tag: "allow", val: { tenant: undefined, metadata: [], ...identity } });
export const deny = (response) => ({ tag: "deny", val: response });
export const edit = {
  setHeader: (name, value) => ({ tag: "set-header", val: [name, value] }),
  removeHeader: (name) => ({ tag: "remove-header", val: name }),
  setModel: (model) => ({ tag: "set-model", val: model }),
  setMaxTokens: (n) => ({ tag: "set-max-tokens", val: n }),
  prependSystem: (text) => ({ tag: "prepend-system", val: text }),
  /** Sets a top-level body field to `value` (serialized as JSON; `null` removes it). */
  setBodyField: (name, value) => ({ tag: "set-body-field", val: [name, JSON.stringify(value)] }),
  setResponseHeader: (name, value) => ({ tag: "set-response-header", val: [name, value] }),
};

/** The OpenAI error body `{"error":{"message":..,"type":..,"param":..,"code":..}}`. */
export function errorBody(message, type, param = null, code = null) {
  return JSON.stringify({ error: { message, type, param, code } });
}

/** A response with an OpenAI error body; `headers` is a list of `[name, value]`. */
export function errorResponse(status, message, type, code, headers = []) {
  return { status, headers, body: errorBody(message, type, null, code) };
}

/** The first value of header `name` (case-insensitive; the gateway sends lower case). */
export function header(req, name) {
  const wanted = name.toLowerCase();
  const found = req.headers.find(([n]) => n.toLowerCase() === wanted);
  return found === undefined ? undefined : found[1];
}

/** The token of `authorization: Bearer <token>` (scheme case-insensitive), if non-empty. */
export function bearerToken(req) {
  const value = (header(req, "authorization") ?? "").trim();
  const space = value.indexOf(" ");
  if (space < 0 || value.slice(0, space).toLowerCase() !== "bearer") return undefined;
  const token = value.slice(space + 1).trim();
  return token === "" ? undefined : token;
}

/** A request with everything empty, for native tests: `testRequest({ headers: [...] })`. */
export function testRequest(fields = {}) {
  return {
    id: "req-test",
    method: "POST",
    path: "/v1/chat/completions",
    headers: [],
    clientIp: "127.0.0.1",
    tenant: undefined,
    identity: undefined,
    model: "gpt-4o-mini",
    endpoint: "chat",
    stream: false,
    maxTokens: undefined,
    promptTokensEstimate: 0,
    body: undefined,
    ...fields,
  };
}

// Logging through the gateway (`host.log`), tagged with plugin and request id. The entry file
// hands the host import over with `useHost`; natively, lines go to the console.
let hostLog = (level, message) => console.error(`[${level}] ${message}`);

/** Gives the SDK the host imports (`import { log } from "wasmgate:policy/host@0.1.0"`). */
export function useHost({ log }) {
  hostLog = log;
}

export const log = Object.fromEntries(
  ["trace", "debug", "info", "warn", "error"].map((level) => [level, (message) => hostLog(level, String(message))]),
);

// Export glue: `configure` parses and keeps the config (an error refuses it); the entry point
// gets the parsed config first. An exception at request time is not caught: the instance
// traps and the gateway applies the plugin's failure policy.
function glue(plugin) {
  let config;
  const configure = (text) => {
    try {
      const parsed = parseConfig(text, plugin.schema);
      if (plugin.configure) plugin.configure(parsed);
      config = parsed;
    } catch (e) {
      // componentize-js maps a thrown value to `err(value)` of `result<_, string>`.
      throw e instanceof Error ? e.message : String(e);
    }
  };
  const current = () => {
    if (config === undefined) throw new Error("the plugin was called before `configure` succeeded");
    return config;
  };
  return { configure, current };
}

/** `{ configure, authenticate }` of an `auth` plugin `{ schema, configure?, authenticate(config, req) }`. */
export function exportAuth(plugin) {
  const { configure, current } = glue(plugin);
  return { configure, authenticate: (req) => plugin.authenticate(current(), req) };
}

/** `{ configure, rewrite }` of a `rewrite` plugin `{ schema, configure?, rewrite(config, req) }`. */
export function exportRewrite(plugin) {
  const { configure, current } = glue(plugin);
  return { configure, rewrite: (req) => plugin.rewrite(current(), req) };
}

/** `{ configure, admit, settle }` of a `rate-limit` plugin. */
export function exportRateLimit(plugin) {
  const { configure, current } = glue(plugin);
  return {
    configure,
    admit: (req) => plugin.admit(current(), req),
    settle: (reservation, usage, outcome) => plugin.settle(current(), reservation, usage, outcome),
  };
}
