// Component entry point (componentize-js): exports `Plugin` as the `{{kind}}` world.
import { {{js_host_imports}} } from "wasmgate:policy/host@0.1.0";
import { {{js_export}}, useHost } from "{{js_sdk}}";
import { Plugin{{js_extra_import}} } from "./logic.js";

useHost({ log });{{js_extra_call}}
export const { {{js_exports}} } = {{js_export}}(Plugin);
