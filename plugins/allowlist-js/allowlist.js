// The allow-list logic (free of host imports, so `node --test` runs it natively).

import { allow, bearerToken, deny, errorResponse, header, t } from "../../sdk/js/index.js";
import { inRange, parseCidr, parseIp } from "./ip.js";
import { sha256Hex } from "./sha256.js";

export const schema = {
  // "any": an allowed address OR a known key lets the request in; "both": both are needed.
  require: t.optional(t.oneOf("any", "both"), "any"),
  // Allowed client addresses: IPv4/IPv6 addresses or CIDR ranges.
  ips: t.optional(t.list(t.string()), []),
  // Where the client address is read. Default: the TCP peer the gateway saw (`clientIp`),
  // which a client cannot forge. Behind a trusted proxy, the header it sets (e.g.
  // `x-forwarded-for`); of a list, the LAST entry (the one that proxy appended) counts.
  "client-ip-header": t.optional(t.string()),
  // Accepted API keys, as in auth-keys: sha256 of the key, and the identity it stands for.
  keys: t.optional(
    t.list(
      t.object({
        sha256: t.string(),
        subject: t.string(),
        tenant: t.optional(t.string()),
        metadata: t.optional(t.map(t.string()), {}),
      }),
    ),
    [],
  ),
  // Subject of callers let in by address alone (`{ip}` is replaced by the address).
  "ip-subject": t.optional(t.string(), "ip:{ip}"),
};

/** Checks the config and prepares it (CIDRs parsed once); throws a message naming the field. */
export function configure(config) {
  config.ranges = config.ips.map((cidr, i) => {
    try {
      return parseCidr(cidr);
    } catch (why) {
      throw `invalid config at \`ips[${i}]\`: ${why}`;
    }
  });
  config.keys.forEach((k, i) => {
    if (!/^[0-9a-fA-F]{64}$/.test(k.sha256)) throw `invalid config at \`keys[${i}].sha256\`: expected 64 hex digits`;
    if (k.subject === "") throw `invalid config at \`keys[${i}].subject\`: must not be empty`;
    k.sha256 = k.sha256.toLowerCase();
  });
  if (config.ranges.length === 0 && config.keys.length === 0) {
    throw "invalid config: allow at least one address (`ips`) or key (`keys`)";
  }
  if (config.require === "both" && (config.ranges.length === 0 || config.keys.length === 0)) {
    throw "invalid config at `require`: \"both\" needs `ips` and `keys`";
  }
}

/** The client address (the peer, or the configured header's last entry), as text, if valid. */
export function clientIp(config, req) {
  if (config["client-ip-header"] === undefined) return parseIp(req.clientIp ?? "") ? req.clientIp : undefined;
  const value = header(req, config["client-ip-header"]);
  if (value === undefined) return undefined;
  const last = value.split(",").pop().trim();
  return parseIp(last) ? last : undefined;
}

/** The index of the key whose hash matches `key`, comparing with every entry (no early exit). */
function findKey(config, key) {
  const digest = sha256Hex(key);
  let found = -1;
  config.keys.forEach((k, i) => {
    let diff = 0;
    for (let j = 0; j < 64; j++) diff |= digest.charCodeAt(j) ^ k.sha256.charCodeAt(j);
    if (diff === 0 && found < 0) found = i;
  });
  return found;
}

const unauthorized = (message) =>
  errorResponse(401, message, "invalid_request_error", "invalid_api_key", [["www-authenticate", "Bearer"]]);

const forbiddenAddress = () =>
  errorResponse(403, "Requests from this address are not allowed.", "invalid_request_error", "ip_not_allowed");

export function authenticate(config, req) {
  const ip = clientIp(config, req);
  const bytes = ip === undefined ? undefined : parseIp(ip);
  const ipOk = bytes !== undefined && config.ranges.some((r) => inRange(bytes, r));
  const token = bearerToken(req);
  const keyIndex = token === undefined || config.keys.length === 0 ? -1 : findKey(config, token);
  const entry = config.keys[keyIndex];
  const metadata = (extra) => [...Object.entries(entry ? entry.metadata : {}).sort(), ...extra];
  const ipMeta = ip === undefined ? [] : [["client-ip", ip]];

  if (config.require === "both") {
    if (!ipOk) return deny(forbiddenAddress());
  } else if (ipOk && !entry) {
    return allow({ subject: config["ip-subject"].replaceAll("{ip}", ip), metadata: ipMeta });
  }
  if (entry) return allow({ subject: entry.subject, tenant: entry.tenant, metadata: metadata(ipMeta) });
  if (config.keys.length === 0) return deny(forbiddenAddress());
  return deny(unauthorized(token === undefined ? "Missing API key: send it as `Authorization: Bearer <key>`." : "Incorrect API key provided."));
}

export const Allowlist = { schema, configure, authenticate };
