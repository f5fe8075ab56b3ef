"""The knowledge base: FAQ articles suggested while visitors and agents type (issue 21).

- :mod:`~chatserver.kb.model`: articles, files, safe HTML, search terms (pure)
- :mod:`~chatserver.kb.service`: :class:`~chatserver.kb.service.KnowledgeBase`, the actions
- :mod:`~chatserver.kb.store`: the storage contract and its SQLite implementation (FTS5)
- :mod:`~chatserver.kb.files`: ``chatserver kb import`` / ``export``

See docs/knowledge-base.md.
"""
