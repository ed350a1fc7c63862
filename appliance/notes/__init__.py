"""Session notes from a transcript: silences, metrics, bookmarks, risk flags, the
draft.
"""
