"""Encrypted job state across an upgrade of the speaker model: old checkpoints and old
voice profiles are recognised and never mixed with the new embeddings."""

from __future__ import annotations

import json
import logging

import numpy as np

from appliance import age
from appliance.transcription import checkpoints, speakers
from appliance.transcription.pipeline import Progress


def test_a_checkpoint_with_old_voice_features_starts_the_session_over(storage, keystore,
                                                                      recovery_key, caplog):
    saved = checkpoints.Checkpoints(storage)
    sid = storage.create_session().id
    old = Progress(offset=16000 * 600, mode="mono", windows=[[0.0, 1.5]] * 4,
                   embeddings=np.ones((4, 39), dtype=np.float32))  # MFCC statistics
    saved.save(sid, old, keystore.recipient())
    with caplog.at_level(logging.WARNING):
        assert saved.load(sid, keystore.identity()) is None
    assert "older speaker model" in caplog.text and "starting over" in caplog.text
    new = Progress(offset=16000 * 600, mode="mono", windows=[[0.0, 1.5]],
                   embeddings=np.ones((1, speakers.EMBEDDING_SIZE), dtype=np.float32))
    saved.save(sid, new, keystore.recipient())
    assert saved.load(sid, keystore.identity()).embeddings.shape == (1, speakers.EMBEDDING_SIZE)


def test_voice_profiles_load_by_label_and_old_ones_are_skipped(storage, keystore, recovery_key,
                                                               caplog):
    recipient = keystore.recipient()
    voice = np.full(speakers.EMBEDDING_SIZE, 1 / np.sqrt(speakers.EMBEDDING_SIZE))
    checkpoints.save_voice(storage, recipient, voice)  # enrolled without --name
    checkpoints.save_voice(storage, recipient, voice, "Dr Rivera")
    old = json.dumps({"version": 1, "embedding": [0.0] * 39}).encode()
    with storage.connect() as conn:
        conn.execute("INSERT INTO voice_profiles(name, profile_enc, created_at) VALUES(?, ?, ?)",
                     ("Dr Old", age.encrypt(old, [recipient]), "2026-01-01T00:00:00Z"))
    with caplog.at_level(logging.WARNING):
        voices = checkpoints.load_voices(storage, keystore.identity())
    assert sorted(voices) == sorted([speakers.CLINICIAN, "Dr Rivera"])
    assert "'Dr Old' was enrolled with the older speaker method" in caplog.text
