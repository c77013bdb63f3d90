import assert from "node:assert/strict";
import { test } from "node:test";

import { edit, parseConfig, testRequest } from "{{js_sdk_from_test}}";
import { Plugin } from "../logic.js";

const config = parseConfig('{"header": "x-team", "value": "research", "max-tokens-cap": 512}', Plugin.schema);

test("sets the header and caps max_tokens", () => {
  const d = Plugin.rewrite(config, testRequest({ maxTokens: 4096 }));
  assert.deepEqual(d.val, [edit.setHeader("x-team", "research"), edit.setMaxTokens(512)]);
});

test("leaves a small max_tokens alone", () => {
  assert.equal(Plugin.rewrite(config, testRequest({ maxTokens: 100 })).val.length, 1);
});
