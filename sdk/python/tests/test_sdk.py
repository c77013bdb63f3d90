"""Native tests of the SDK: `python3 -m unittest discover -s tests` in sdk/python."""

import os
import sys
import unittest
from dataclasses import dataclass, field
from typing import Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wasmgate_sdk import ConfigError, Request, bearer_token, error_body, error_response, header, parse_config  # noqa: E402


@dataclass
class Limit:
    limit: int
    window_ms: int = 60000


@dataclass
class Config:
    name: str
    ratio: float = 1.0
    on: bool = False
    tags: List[str] = field(default_factory=list)
    limits: Dict[str, Limit] = field(default_factory=dict)
    note: Optional[str] = None


class ConfigTest(unittest.TestCase):
    def test_nested_and_defaults(self):
        cfg = parse_config('{"name":"a","ratio":2,"limits":{"x":{"limit":3,"window-ms":10}},"note":null}', Config)
        self.assertEqual(cfg, Config(name="a", ratio=2.0, limits={"x": Limit(3, 10)}))

    def test_errors(self):
        cases = [
            ("", "invalid config at `name`: missing field"),
            ("{", "invalid config: not JSON"),
            ('{"name":1}', "at `name`: expected a string, found a number"),
            ('{"name":"a","on":"yes"}', "at `on`: expected a boolean, found a string"),
            ('{"name":"a","tags":["x",2]}', r"at `tags\[1\]`: expected a string"),
            ('{"name":"a","limits":{"x":{"limit":true}}}', "at `limits.x.limit`: expected an integer, found a boolean"),
            ('{"name":"a","limits":{"x":{}}}', "at `limits.x.limit`: missing field"),
            ('{"name":"a","nmae":1}', "at `nmae`: unknown field"),
            ("[]", "expected an object, found an array"),
        ]
        for text, message in cases:
            with self.subTest(text=text), self.assertRaisesRegex(ConfigError, message):
                parse_config(text, Config)


class HelpersTest(unittest.TestCase):
    def test_error_body_has_openai_shape_in_order(self):
        self.assertEqual(
            error_body("Nope.", "invalid_request_error", "model", "x"),
            '{"error":{"message":"Nope.","type":"invalid_request_error","param":"model","code":"x"}}',
        )
        r = error_response(401, 'a "b"', "t", "c")
        self.assertEqual((r.status, r.body), (401, '{"error":{"message":"a \\"b\\"","type":"t","param":null,"code":"c"}}'))

    def test_headers(self):
        req = Request(headers=[("authorization", "bearer  sk-1 "), ("x-a", "1")])
        self.assertEqual((header(req, "X-A"), header(req, "x-b")), ("1", None))
        self.assertEqual(bearer_token(req), "sk-1")
        self.assertIsNone(bearer_token(Request(headers=[("authorization", "Basic x")])))
        self.assertIsNone(bearer_token(Request()))


if __name__ == "__main__":
    unittest.main()
