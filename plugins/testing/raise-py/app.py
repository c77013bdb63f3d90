"""`rewrite` world in Python: `configure` accepts any config; `rewrite` raises (an uncaught
exception traps the instance)."""

import wit_world


class WitWorld(wit_world.WitWorld):
    def configure(self, config: str) -> None:
        pass

    def rewrite(self, req):
        raise RuntimeError(f"raise-py: refusing {req.id}")
