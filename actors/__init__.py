"""What ``dramatiq actors`` and ``periodiq actors`` load: the broker, with every actor declared.

Importing this package reads the environment and builds the broker; web processes never import
it (they publish through their own :class:`messaging.rabbitmq.HeraldBroker`).
"""

from actors.setup import build
from settings import load_or_exit

broker = build(load_or_exit())
