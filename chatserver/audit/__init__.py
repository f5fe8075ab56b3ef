"""Revision-safe storage beyond the ticket rows: sealed chats, signed chain heads.

- :mod:`~chatserver.audit.chain`: the chat chain and the signatures of chain heads (pure)
- :mod:`~chatserver.audit.keys`: the audit key, read from outside the database
- :mod:`~chatserver.audit.seals`: sealing closed chats and signing ticket heads
  (``chat_seals``, ``ticket_seals``), in the server and by ``chatserver audit seal``
- :mod:`~chatserver.audit.verify`: checking the seals, exporting the heads and checking
  against an export (``chatserver audit verify [--against FILE]``, ``audit export``)
"""
