"""Herald's RabbitMQ side: the topology, the dramatiq broker shaped to it, what a message carries,
and ``failed.queue`` read and replayed as the operator's store (ARCHITECTURE.md, "Packages").

It sits above ``models`` and below ``providers``, ``middleware``, ``actors`` and ``web``: the
gateway publishes through it and the workers consume through it, without either importing the
other's stack.
"""
