// {{name}}: a wasmgate `rewrite` plugin. Sets a header on the request to the upstream and
// caps `max_tokens`. The logic imports no host function, so `node --test` runs it natively.

import { edit, log, mutate, t } from "{{js_sdk}}";

export const schema = {
  // Header to set on the upstream request, e.g. `x-team`.
  header: t.string(),
  // Its value.
  value: t.string(),
  // Largest `max_tokens` a request may ask for; requests without one get it.
  "max-tokens-cap": t.optional(t.integer()),
};

export function configure(config) {
  if (!/^[A-Za-z0-9-]+$/.test(config.header)) throw `\`header\` ${JSON.stringify(config.header)} is not a header name`;
}

export function rewrite(config, req) {
  const edits = [edit.setHeader(config.header.toLowerCase(), config.value)];
  const cap = config["max-tokens-cap"];
  if (cap !== undefined && (req.maxTokens === undefined || req.maxTokens > cap)) {
    log.debug(`capping max_tokens of ${req.id} at ${cap}`);
    edits.push(edit.setMaxTokens(cap));
  }
  return mutate(edits);
}

export const Plugin = { schema, configure, rewrite };
