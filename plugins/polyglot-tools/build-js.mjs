// Builds a JavaScript plugin into a component with the componentize-js API (its CLI and
// `jco componentize` fail to read WIT here; see docs/plugins.md).
// usage: node build-js.mjs <node-tools-dir> <source.js> <wit-dir> <world> <out.wasm>
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [tools, sourcePath, witPath, worldName, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node build-js.mjs <node-tools-dir> <source.js> <wit-dir> <world> <out.wasm>");
  process.exit(2);
}
const entry = join(tools, "node_modules", "@bytecodealliance", "componentize-js", "src", "componentize.js");
const { componentize } = await import(pathToFileURL(entry).href);
const started = performance.now();
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName,
  // No WASI: the gateway gives plugins nothing but `host` (and the default build would import
  // wasi:http, which the gateway does not provide).
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
const secs = ((performance.now() - started) / 1000).toFixed(1);
console.error(`${out}: ${component.length} bytes in ${secs} s`);
