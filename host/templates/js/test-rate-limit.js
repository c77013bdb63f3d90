import assert from "node:assert/strict";
import { test } from "node:test";

import { parseConfig, testRequest } from "{{js_sdk_from_test}}";
import { Plugin, caller, useQuota } from "../logic.js";

const config = parseConfig('{"requests": 1}', Plugin.schema);

test("counts by subject, else by client IP", () => {
  assert.equal(caller(testRequest({ clientIp: "203.0.113.7" })), "ip:203.0.113.7");
  assert.equal(caller(testRequest({ identity: { subject: "alice", metadata: [] } })), "subject:alice");
});

test("admits, then refuses with 429 and retry-after", () => {
  const used = new Map();
  useQuota((key, cost, limit) => {
    const now = used.get(key) ?? 0n;
    const allowed = now + cost <= limit;
    if (allowed) used.set(key, now + cost);
    return { allowed, limit, remaining: limit - (used.get(key) ?? 0n), resetMs: 1500n };
  });
  assert.equal(Plugin.admit(config, testRequest()).decision.tag, "mutate");
  const refused = Plugin.admit(config, testRequest()).decision;
  assert.equal(refused.tag, "respond");
  assert.equal(refused.val.status, 429);
  assert.deepEqual(refused.val.headers[0], ["retry-after", "2"]);
});
