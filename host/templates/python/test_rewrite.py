import unittest

from wasmgate_sdk import Request, SetHeader, SetMaxTokens, parse_config

from plugin import Config, Plugin


class Test(unittest.TestCase):
    config = parse_config('{"header": "x-team", "value": "research", "max-tokens-cap": 512}', Config)

    def test_sets_the_header_and_caps_max_tokens(self):
        d = Plugin.rewrite(self.config, Request(max_tokens=4096))
        self.assertIn(SetHeader("x-team", "research"), d.edits)
        self.assertIn(SetMaxTokens(512), d.edits)

    def test_leaves_a_small_max_tokens_alone(self):
        self.assertEqual(len(Plugin.rewrite(self.config, Request(max_tokens=100)).edits), 1)


if __name__ == "__main__":
    unittest.main()
