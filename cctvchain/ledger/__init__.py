"""The ledger: blocks, block files, world state, history and crash recovery.

Pure modules (no storage engine): ``validation``, ``errors``, ``block``, ``keys``,
``records``, ``transaction``, ``genesis``, ``config``. Shells: ``blockfile`` (segment
files) and ``store`` (the LevelDB-backed :class:`~cctvchain.ledger.store.Ledger`).

This package file imports nothing on purpose, so that importing a pure submodule never
drags in plyvel.
"""
