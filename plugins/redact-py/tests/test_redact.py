"""Native tests of the redaction logic: `python3 -m unittest discover -s tests` in this folder
(the SDK is found through ../../sdk/python, added below)."""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "..", "..", "sdk", "python")]

from redact import Config, Redact, configure, redact_text  # noqa: E402
from wasmgate_sdk import Continue, Mutate, Request, SetBodyField, SetResponseHeader, parse_config  # noqa: E402


def chat(messages, **kw):
    return Request(body=json.dumps({"model": "m", "messages": messages}), **kw)


class RedactTextTest(unittest.TestCase):
    def setUp(self):
        self.cfg = Config()

    def test_emails(self):
        self.assertEqual(redact_text("mail bob.smith+x@mail.example.co.uk now", self.cfg), ("mail [REDACTED] now", 1))
        self.assertEqual(redact_text("a@b.io, c.d@e-f.org", self.cfg), ("[REDACTED], [REDACTED]", 2))

    def test_phones(self):
        for phone in ["+1 415 555 2671", "(415) 555-2671", "415-555-2671", "+44 20 7946 0958", "0612345678", "+33612345678"]:
            with self.subTest(phone=phone):
                self.assertEqual(redact_text(f"call {phone}.", self.cfg), ("call [REDACTED].", 1))

    def test_leaves_dates_ips_versions_and_small_numbers(self):
        for text in ["on 2024-01-15", "host 192.168.100.200", "v1.2.3", "order 12345", "pi 3.14159", "year 2026"]:
            with self.subTest(text=text):
                self.assertEqual(redact_text(text, self.cfg), (text, 0))

    def test_detectors_and_replacement(self):
        cfg = Config(detectors=["email"], replacement="<{detector}>")
        self.assertEqual(redact_text("x@y.com or +1 415 555 2671", cfg), ("<email> or +1 415 555 2671", 1))
        cfg = Config(detectors=["phone"], replacement="<{detector}>")
        self.assertEqual(redact_text("x@y.com or +1 415 555 2671", cfg), ("x@y.com or <phone>", 1))


class RewriteTest(unittest.TestCase):
    def test_string_and_parts_content(self):
        cfg = Config(count_header="x-redactions")
        req = chat(
            [
                {"role": "system", "content": "Be nice."},
                {"role": "user", "content": "I am ann@example.com"},
                {"role": "user", "content": [{"type": "text", "text": "ring +1 415 555 2671"}, {"type": "image_url", "image_url": {"url": "https://x/a@b.com"}}]},
            ]
        )
        d = Redact.rewrite(cfg, req)
        self.assertIsInstance(d, Mutate)
        body, header = d.edits
        self.assertIsInstance(body, SetBodyField)
        self.assertEqual(body.name, "messages")
        messages = json.loads(body.json_value)
        self.assertEqual(messages[0]["content"], "Be nice.")
        self.assertEqual(messages[1]["content"], "I am [REDACTED]")
        self.assertEqual(messages[2]["content"][0]["text"], "ring [REDACTED]")
        self.assertEqual(messages[2]["content"][1], {"type": "image_url", "image_url": {"url": "https://x/a@b.com"}})
        self.assertEqual(header, SetResponseHeader("x-redactions", "2"))

    def test_nothing_to_redact_continues(self):
        self.assertEqual(Redact.rewrite(Config(), chat([{"role": "user", "content": "hello"}])), Continue())

    def test_roles_filter(self):
        req = chat([{"role": "assistant", "content": "me@x.org"}, {"role": "user", "content": "you@x.org"}])
        d = Redact.rewrite(Config(roles=["user"]), req)
        self.assertEqual(json.loads(d.edits[0].json_value)[0]["content"], "me@x.org")
        self.assertEqual(json.loads(d.edits[0].json_value)[1]["content"], "[REDACTED]")

    def test_without_body_or_other_endpoints_continues(self):
        self.assertEqual(Redact.rewrite(Config(), Request(body=None)), Continue())
        self.assertEqual(Redact.rewrite(Config(), Request(endpoint="embeddings", body='{"input":"a@b.com"}')), Continue())


class ConfigTest(unittest.TestCase):
    def test_defaults_and_kebab_case(self):
        cfg = parse_config('{"count-header": "x-n", "replacement": "***"}', Config)
        self.assertEqual((cfg.detectors, cfg.replacement, cfg.count_header), (["email", "phone"], "***", "x-n"))
        configure(cfg)

    def test_errors_name_the_field(self):
        with self.assertRaisesRegex(ValueError, r"invalid config at `replacement`: expected a string, found a number"):
            parse_config('{"replacement": 5}', Config)
        with self.assertRaisesRegex(ValueError, r"`detectors\[1\]`: unknown detector `ssn`"):
            configure(parse_config('{"detectors": ["email", "ssn"]}', Config))
        with self.assertRaisesRegex(ValueError, r"`colour`: unknown field"):
            parse_config('{"colour": 1}', Config)


if __name__ == "__main__":
    unittest.main()
