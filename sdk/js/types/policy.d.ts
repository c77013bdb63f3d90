// Types of the wasmgate:policy@0.1.0 values (wit/policy.wit) as componentize-js 0.23.0 passes
// them: records are objects with camelCase fields, variants `{ tag, val }`, tuples arrays,
// `option<T>` is `T | undefined`, enums are strings.
//
// Hand-written: `jco types` 1.35.0 fails on every WIT path here ("failed to read path for WIT
// ... os error 44", the same bug as `jco componentize`). Keep in step with wit/policy.wit.

export type Header = [string, string];

export interface Identity {
  subject: string;
  tenant?: string;
  metadata: Array<[string, string]>;
}

export interface Request {
  id: string;
  method: string;
  path: string;
  headers: Header[];
  /** The TCP peer's address as the gateway saw it (never a forwarded-for header). */
  clientIp: string;
  tenant?: string;
  identity?: Identity;
  model: string;
  endpoint: "chat" | "completions" | "embeddings";
  stream: boolean;
  maxTokens?: number;
  promptTokensEstimate: number;
  /** The JSON body, only with `body = true` in the plugin's gateway config. */
  body?: string;
}

export interface Response {
  status: number;
  headers: Header[];
  body: string;
}

export type Edit =
  | { tag: "set-header"; val: Header }
  | { tag: "remove-header"; val: string }
  | { tag: "set-model"; val: string }
  | { tag: "set-max-tokens"; val: number }
  | { tag: "prepend-system"; val: string }
  | { tag: "set-body-field"; val: [string, string] }
  | { tag: "set-response-header"; val: Header };

export type Decision = { tag: "continue" } | { tag: "mutate"; val: Edit[] } | { tag: "respond"; val: Response };

export type AuthDecision = { tag: "allow"; val: Identity } | { tag: "deny"; val: Response };

export interface Admission {
  decision: Decision;
  reservation?: string;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export type Outcome = "completed" | "upstream-error" | "client-aborted";
export type Level = "trace" | "debug" | "info" | "warn" | "error";

export interface QuotaStatus {
  allowed: boolean;
  limit: bigint;
  remaining: bigint;
  resetMs: bigint;
}

/** `import { ... } from "wasmgate:policy/host@0.1.0"` inside a component. */
export interface Host {
  log(level: Level, message: string): void;
  nowMs(): bigint;
  quotaConsume(key: string, cost: bigint, limit: bigint, windowMs: bigint): QuotaStatus;
  quotaAdjust(key: string, delta: bigint, windowMs: bigint): void;
  kvGet(key: string): string | undefined;
  kvSet(key: string, value: string, ttlMs: bigint | undefined): void;
  kvDelete(key: string): void;
}
