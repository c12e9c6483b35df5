"""The training system: the LightningModule, losses, schedules, speed switches and weight loading.

Networks (``src.models``) know nothing of these; this package composes them into something that trains.
"""
