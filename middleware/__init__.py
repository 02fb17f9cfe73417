"""The worker middleware: each policy of the delivery path in one class of its own.

Their order, and why, is documented once, in :func:`middleware.stack.build_stack`. Nothing here is
imported by the web processes except the breaker's state (for ``/metrics``), so importing one
module loads only what it needs.
"""
