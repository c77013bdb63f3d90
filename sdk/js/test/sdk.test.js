// Native tests: `node --test` in sdk/js.
import assert from "node:assert/strict";
import { test } from "node:test";

import { bearerToken, ConfigError, edit, errorBody, exportRewrite, mutate, parseConfig, t, testRequest } from "../index.js";

const schema = {
  name: t.string(),
  ratio: t.optional(t.number(), 1),
  tags: t.optional(t.list(t.string()), []),
  limits: t.optional(t.map(t.object({ limit: t.integer(), "window-ms": t.optional(t.integer(), 60000) })), {}),
};

test("config: defaults, nesting", () => {
  assert.deepEqual(parseConfig('{"name":"a","limits":{"x":{"limit":3}}}', schema), {
    name: "a",
    ratio: 1,
    tags: [],
    limits: { x: { limit: 3, "window-ms": 60000 } },
  });
});

test("config: errors name the field", () => {
  const cases = [
    ["", /invalid config at `name`: missing field/],
    ["{", /invalid config: not JSON/],
    ['{"name":1}', /at `name`: expected a string, found a number/],
    ['{"name":"a","tags":["x",2]}', /at `tags\[1\]`: expected a string/],
    ['{"name":"a","limits":{"x":{"limit":1.5}}}', /at `limits.x.limit`: expected an integer/],
    ['{"name":"a","nmae":1}', /at `nmae`: unknown field/],
    ["[]", /expected an object, found an array/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseConfig(text, schema), (e) => e instanceof ConfigError && message.test(e.message), text);
  }
});

test("helpers", () => {
  assert.equal(errorBody("Nope.", "invalid_request_error", "model", "x"), '{"error":{"message":"Nope.","type":"invalid_request_error","param":"model","code":"x"}}');
  assert.equal(bearerToken(testRequest({ headers: [["authorization", "bearer  sk-1 "]] })), "sk-1");
  assert.equal(bearerToken(testRequest({ headers: [["authorization", "Basic x"]] })), undefined);
  assert.deepEqual(edit.setBodyField("n", { a: 1 }), { tag: "set-body-field", val: ["n", '{"a":1}'] });
});

test("export glue: configure errors are thrown as strings, config reaches the entry point", () => {
  const plugin = exportRewrite({ schema: { model: t.string() }, rewrite: (c) => mutate([edit.setModel(c.model)]) });
  assert.throws(() => plugin.rewrite(testRequest()), /before `configure`/);
  assert.throws(() => plugin.configure("{}"), (e) => e === "invalid config at `model`: missing field");
  plugin.configure('{"model":"m"}');
  assert.deepEqual(plugin.rewrite(testRequest()), { tag: "mutate", val: [{ tag: "set-model", val: "m" }] });
});
