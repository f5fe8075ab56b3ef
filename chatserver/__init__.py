"""chatserver: live chat and support messaging server."""

from . import native

__version__ = "0.1.0"

# The hot-path modules compiled by mypyc, when a build matching these sources
# exists (see chatserver.native); the pure-Python modules otherwise.
native.activate(__path__)
