"""``python -m src.bench``: see ``src.bench.cli``."""

from src.bench.cli import main

if __name__ == "__main__":
    main()
