import unittest
from types import SimpleNamespace

from wasmgate_sdk import Identity, Mutate, Request, Respond, parse_config

from plugin import Config, Plugin, caller


class Test(unittest.TestCase):
    config = parse_config('{"requests": 1}', Config)

    def test_counts_by_subject_then_ip(self):
        self.assertEqual(caller(Request(client_ip="203.0.113.7")), "ip:203.0.113.7")
        self.assertEqual(caller(Request(identity=Identity(subject="alice"))), "subject:alice")

    def test_admits_then_refuses_with_429(self):
        used = {}

        def consume(key, cost, limit, window_ms):
            allowed = used.get(key, 0) + cost <= limit
            if allowed:
                used[key] = used.get(key, 0) + cost
            return SimpleNamespace(allowed=allowed, limit=limit, remaining=limit - used.get(key, 0), reset_ms=1500)

        first, _ = Plugin.admit(self.config, Request(), consume)
        self.assertIsInstance(first, Mutate)
        second, _ = Plugin.admit(self.config, Request(), consume)
        self.assertIsInstance(second, Respond)
        self.assertEqual(second.response.status, 429)
        self.assertIn(("retry-after", "2"), second.response.headers)


if __name__ == "__main__":
    unittest.main()
