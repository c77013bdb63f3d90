//! wasmgate: an OpenAI-compatible LLM API gateway whose policies run as WebAssembly components.
pub mod plugin_artifacts;
