"""Component entry point: exports `Redact` as the `rewrite` world."""

from redact import Redact
from wasmgate_sdk.export import export_rewrite

WitWorld = export_rewrite(Redact)
