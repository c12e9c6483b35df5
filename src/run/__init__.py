"""Assembling a run from a composed config: what every entry point (train, eval, restore, ...) shares."""
