"""The purchase core: validation, the event's wire format, the stored document, ids and config.

Nothing in this package performs I/O; the web and api services are thin adapters around it.
"""
