"""Component entry point (componentize-py): exports `Plugin` as the `{{kind}}` world."""

from plugin import Plugin
from wasmgate_sdk.export import {{py_export}}

WitWorld = {{py_export}}(Plugin)
