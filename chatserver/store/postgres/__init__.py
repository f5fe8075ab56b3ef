"""PostgreSQL store (psycopg 3, a connection pool) with group commit.

Several nodes share one database; everything that must not clash (message seqs,
note numbers, compare-and-set transitions) is decided inside the database.

The modules of this package:

- :mod:`~chatserver.store.postgres.schema`: the numbered migrations, in PostgreSQL's SQL
- :mod:`~chatserver.store.postgres.commit`: the write path (group commit, one
  pipelined round trip per batch)
- :mod:`~chatserver.store.postgres.reads`: reads, the supervisor board, chat notes
- :mod:`~chatserver.store.postgres.store`: :class:`~chatserver.store.postgres.store.PostgresStore`

Import the store from its module (this package imports nothing, so that
:mod:`chatserver.store.database` may use the schema without a cycle).
"""
