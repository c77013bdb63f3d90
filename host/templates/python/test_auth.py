import unittest

from wasmgate_sdk import Allow, Deny, Request, parse_config

from plugin import Config, Plugin


class Test(unittest.TestCase):
    config = parse_config('{"keys": {"sk-example-1": "alice"}}', Config)

    def test_listed_key_is_allowed_as_its_subject(self):
        d = Plugin.authenticate(self.config, Request(headers=[("authorization", "Bearer sk-example-1")]))
        self.assertIsInstance(d, Allow)
        self.assertEqual(d.identity.subject, "alice")

    def test_other_key_and_no_key_are_denied(self):
        for req in [Request(headers=[("authorization", "Bearer sk-other")]), Request()]:
            d = Plugin.authenticate(self.config, req)
            self.assertIsInstance(d, Deny)
            self.assertEqual(d.response.status, 401)


if __name__ == "__main__":
    unittest.main()
