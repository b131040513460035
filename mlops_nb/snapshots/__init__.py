"""Snapshots: the bytes of data versions, cut into content-defined chunks stored once each.

The engine only (base layer, beside the store and the fingerprints): :mod:`.tables` turns
objects into Arrow tables and back, :mod:`.chunking` places the cuts, :mod:`.storage` writes
and reads manifests and chunks, :mod:`.policy` chooses what a run keeps and copies it,
:mod:`.background` writes off the cell's critical path. The user's API (``snapshot``,
``load_data``, ``gc``) is :mod:`mlops_nb.data`.
"""
