// Component entry point (built by componentize-js): exports `Allowlist` as the `auth` world.
import { log } from "wasmgate:policy/host@0.1.0";
import { exportAuth, useHost } from "../../sdk/js/index.js";
import { Allowlist } from "./allowlist.js";

useHost({ log });
export const { configure, authenticate } = exportAuth(Allowlist);
