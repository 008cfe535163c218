"""pgstack_linear: the linear strategy, run over Mitogen's connections when Mitogen is installed.

Mitogen (https://mitogen.networkgenomics.com/ansible_detailed.html) keeps one Python interpreter per
host for the whole run instead of starting a new one, over a new SSH session, for every task: the
linear strategy's order and semantics stay; only the cost of each task drops. It is part of the
controller's tool chain (pyproject.toml, the dev extra). Without it, this strategy is the stock
linear one and says so once.
"""

from __future__ import annotations

from ansible.plugins.loader import strategy_loader
from ansible.utils.display import Display

try:
    # Mitogen's plugin loaders first, as its own strategy plugins do.
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError:
    _Mixin: type = object
    _MITOGEN = False
else:
    _Mixin = ansible_mitogen.strategy.StrategyMixin
    _MITOGEN = True

_Linear = strategy_loader.get("linear", class_only=True)

if not _MITOGEN:
    Display().warning(
        "pgstack_linear: Mitogen is not installed (pip install mitogen), so every task starts a "
        "new Python over SSH as with the linear strategy: correct, but slower."
    )


class StrategyModule(_Mixin, _Linear):  # type: ignore[valid-type,misc]
    pass
