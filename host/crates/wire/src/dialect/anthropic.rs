//! Anthropic Messages ↔ OpenAI chat (see the parent module).
