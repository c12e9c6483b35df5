"""``make bench``: our training, inference and data-loading speed beside the official way of running the same network.

Every figure is measured twice in one run, once with ``SpeedSettings.baseline()`` (fp32, eager, contiguous,
plain AdamW: what the official codes do) and once with our resolved settings, so the speed-up is a ratio of
two numbers taken on the same machine at the same time and stays meaningful on a noisy shared machine.
``python -m src.bench --help`` lists the options; the JSON and Markdown it writes hold every setting.
"""
