"""Knowledge base storage: the contract and its SQLite and PostgreSQL implementations.

- :mod:`~chatserver.kb.store.base`: the records and the
  :class:`~chatserver.kb.store.base.KbStorage` contract (obligations)
- :mod:`~chatserver.kb.store.sqlite`: :class:`SqliteKbStore`, on the store's SQLite file
- :mod:`~chatserver.kb.store.postgres`: :class:`PostgresKbStore`, on the PostgreSQL
  database the nodes share
- :mod:`~chatserver.kb.store.backends`: :func:`make_kb_store`, the one of the settings
"""
