//! OpenAI Responses ↔ OpenAI chat (see the parent module).
