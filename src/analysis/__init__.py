"""Commands that measure the field's open problems on any model (``python -m src.analysis.probe``)."""
