import assert from "node:assert/strict";
import { test } from "node:test";

import { parseConfig, testRequest } from "{{js_sdk_from_test}}";
import { Plugin } from "../logic.js";

const config = parseConfig('{"keys": {"sk-example-1": "alice"}}', Plugin.schema);

test("a listed key is allowed as its subject", () => {
  const d = Plugin.authenticate(config, testRequest({ headers: [["authorization", "Bearer sk-example-1"]] }));
  assert.equal(d.tag, "allow");
  assert.equal(d.val.subject, "alice");
});

test("another key and no key are denied with 401", () => {
  for (const req of [testRequest({ headers: [["authorization", "Bearer sk-other"]] }), testRequest()]) {
    const d = Plugin.authenticate(config, req);
    assert.equal(d.tag, "deny");
    assert.equal(d.val.status, 401);
  }
});
