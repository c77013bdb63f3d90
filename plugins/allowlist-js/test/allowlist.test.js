// Native tests: `node --test` in plugins/allowlist-js.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { parseConfig, testRequest } from "../../../sdk/js/index.js";
import { Allowlist, clientIp } from "../allowlist.js";
import { inRange, parseCidr, parseIp } from "../ip.js";
import { sha256Hex } from "../sha256.js";

const sha = (s) => createHash("sha256").update(s).digest("hex");

// Most cases below read the address from a proxy header; the default (the peer) has its own test.
function configured(json) {
  const config = parseConfig(JSON.stringify({ "client-ip-header": "x-forwarded-for", ...json }), Allowlist.schema);
  Allowlist.configure(config);
  return config;
}

const req = (headers) => testRequest({ headers });

test("sha256 matches node's", () => {
  for (const s of ["", "abc", "sk-test-alice", "x".repeat(55), "y".repeat(64), "é😀".repeat(40)]) {
    assert.equal(sha256Hex(s), sha(s));
  }
});

test("ip parsing and ranges", () => {
  assert.deepEqual(parseIp("10.1.2.3"), [10, 1, 2, 3]);
  assert.deepEqual(parseIp("::ffff:10.1.2.3"), [10, 1, 2, 3]);
  assert.equal(parseIp("2001:db8::1").length, 16);
  for (const bad of ["10.1.2", "256.1.1.1", "01.2.3.4", "1::2::3", "gg::1", "1:2:3:4:5:6:7:8:9", "x"]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
  const r = parseCidr("10.0.0.0/8");
  assert.ok(inRange(parseIp("10.255.0.1"), r));
  assert.ok(!inRange(parseIp("11.0.0.1"), r));
  assert.ok(inRange(parseIp("192.168.1.77"), parseCidr("192.168.1.64/27")));
  assert.ok(!inRange(parseIp("192.168.1.96"), parseCidr("192.168.1.64/27")));
  assert.ok(inRange(parseIp("2001:db8:0:1::5"), parseCidr("2001:db8::/32")));
  assert.ok(!inRange(parseIp("2001:db9::5"), parseCidr("2001:db8::/32")));
  assert.ok(!inRange(parseIp("10.0.0.1"), parseCidr("::/0")), "families never mix");
  assert.ok(inRange(parseIp("203.0.113.7"), parseCidr("203.0.113.7")));
  assert.throws(() => parseCidr("10.0.0.0/33"), /prefix length/);
});

test("by default the client ip is the TCP peer, and headers are ignored", () => {
  const config = parseConfig(JSON.stringify({ ips: ["127.0.0.0/8"] }), Allowlist.schema);
  Allowlist.configure(config);
  const peer = testRequest({ clientIp: "127.0.0.1", headers: [["x-forwarded-for", "8.8.8.8"]] });
  assert.equal(clientIp(config, peer), "127.0.0.1");
  assert.equal(Allowlist.authenticate(config, peer).tag, "allow");
  const outside = testRequest({ clientIp: "192.0.2.1", headers: [["x-forwarded-for", "127.0.0.1"]] });
  assert.equal(Allowlist.authenticate(config, outside).val.status, 403);
});

test("client ip is the last entry of the header", () => {
  const config = configured({ ips: ["10.0.0.0/8"] });
  assert.equal(clientIp(config, req([["x-forwarded-for", "1.2.3.4, 10.0.0.9"]])), "10.0.0.9");
  assert.equal(clientIp(config, req([["x-forwarded-for", "nonsense"]])), undefined);
  assert.equal(clientIp(config, req([])), undefined);
});

test("any: an allowed address or a known key", () => {
  const config = configured({
    ips: ["10.0.0.0/8", "2001:db8::/32"],
    keys: [{ sha256: sha("sk-alice").toUpperCase(), subject: "alice", tenant: "acme", metadata: { plan: "pro" } }],
  });
  const byIp = Allowlist.authenticate(config, req([["x-forwarded-for", "2001:db8::7"]]));
  assert.deepEqual(byIp, { tag: "allow", val: { subject: "ip:2001:db8::7", tenant: undefined, metadata: [["client-ip", "2001:db8::7"]] } });
  const byKey = Allowlist.authenticate(config, req([["authorization", "Bearer sk-alice"]]));
  assert.deepEqual(byKey, { tag: "allow", val: { subject: "alice", tenant: "acme", metadata: [["plan", "pro"]] } });

  const missing = Allowlist.authenticate(config, req([["x-forwarded-for", "11.0.0.1"]]));
  assert.equal(missing.tag, "deny");
  assert.equal(missing.val.status, 401);
  assert.deepEqual(missing.val.headers, [["www-authenticate", "Bearer"]]);
  assert.deepEqual(JSON.parse(missing.val.body), {
    error: { message: "Missing API key: send it as `Authorization: Bearer <key>`.", type: "invalid_request_error", param: null, code: "invalid_api_key" },
  });
  const wrong = Allowlist.authenticate(config, req([["authorization", "Bearer sk-bob"]]));
  assert.equal(JSON.parse(wrong.val.body).error.message, "Incorrect API key provided.");
});

test("both: the address and the key", () => {
  const config = configured({ require: "both", ips: ["10.0.0.0/8"], keys: [{ sha256: sha("k"), subject: "svc" }] });
  const ok = Allowlist.authenticate(config, req([["x-forwarded-for", "10.1.1.1"], ["authorization", "Bearer k"]]));
  assert.deepEqual(ok.val, { subject: "svc", tenant: undefined, metadata: [["client-ip", "10.1.1.1"]] });
  const outside = Allowlist.authenticate(config, req([["x-forwarded-for", "8.8.8.8"], ["authorization", "Bearer k"]]));
  assert.equal(outside.val.status, 403);
  assert.equal(JSON.parse(outside.val.body).error.code, "ip_not_allowed");
  const noKey = Allowlist.authenticate(config, req([["x-forwarded-for", "10.1.1.1"]]));
  assert.equal(noKey.val.status, 401);
});

test("ips only: outsiders get 403", () => {
  const config = configured({ ips: ["127.0.0.1"], "client-ip-header": "x-real-ip", "ip-subject": "office" });
  assert.equal(Allowlist.authenticate(config, req([["x-real-ip", "127.0.0.1"]])).val.subject, "office");
  assert.equal(Allowlist.authenticate(config, req([["x-forwarded-for", "127.0.0.1"]])).val.status, 403);
});

test("config errors name the field", () => {
  const err = (json) => {
    try {
      configured(json);
    } catch (e) {
      return e instanceof Error ? e.message : e;
    }
    assert.fail(`accepted ${JSON.stringify(json)}`);
  };
  assert.match(err({ ips: ["10.0.0.0/8", "10.0.0.300"] }), /at `ips\[1\]`: `10.0.0.300` is not an IP/);
  assert.match(err({ keys: [{ sha256: "abc", subject: "a" }] }), /at `keys\[0\].sha256`: expected 64 hex digits/);
  assert.match(err({ keys: [{ subject: "a" }] }), /at `keys\[0\].sha256`: missing field/);
  assert.match(err({ ips: "10.0.0.0/8" }), /at `ips`: expected an array, found a string/);
  assert.match(err({ require: "all", ips: ["::1"] }), /at `require`: expected one of "any", "both"/);
  assert.match(err({ ipz: [] }), /at `ipz`: unknown field/);
  assert.match(err({}), /allow at least one/);
  assert.match(err({ require: "both", ips: ["::1"] }), /"both" needs/);
});
