// Builds a JavaScript plugin into a component with the componentize-js API (its CLI and
// `jco componentize` fail to read WIT here; see docs/plugins.md).
// usage: node build-js.mjs <componentize-js> <source.js> <wit-dir> <world> <out.wasm>
// where <componentize-js> is a directory with node_modules/@bytecodealliance/componentize-js
// (what plugins/polyglot-tools.sh installs under target/polyglot-tools/node), or the
// `componentize-js` executable (from node_modules/.bin or PATH; its package is found from it).
// `wasmgate plugin new` copies this file into JavaScript projects.
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

const usage = "usage: node build-js.mjs <componentize-js dir or executable> <source.js> <wit-dir> <world> <out.wasm>";
const [tools, sourcePath, witPath, worldName, out] = process.argv.slice(2);
if (!out) {
  console.error(usage);
  process.exit(2);
}

// The componentize-js package directory.
function packageDir(tools) {
  if (statSync(tools).isDirectory()) {
    return join(tools, "node_modules", "@bytecodealliance", "componentize-js");
  }
  // The executable is a symlink to the package's CLI script: walk up to its package.json.
  for (let dir = dirname(realpathSync(tools)); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "@bytecodealliance/componentize-js") {
      return dir;
    }
  }
  console.error(`${tools}: not inside the @bytecodealliance/componentize-js package`);
  process.exit(2);
}

const entry = join(packageDir(tools), "src", "componentize.js");
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
