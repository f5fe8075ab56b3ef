"""chatserver: live chat and support messaging server."""

__version__ = "0.1.0"
