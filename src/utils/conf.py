"""Where the config tree is: ``conf/`` beside ``src/``, given to Hydra as an absolute path.

An absolute path makes the commands work the same as ``python -m src.train`` and as installed console scripts
(``aioir-train``); a path relative to the module would be looked up as a Python package there.
"""

from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
