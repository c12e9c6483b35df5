"""``python -m src.analysis.route``: GRIDS's test-time routing, measured: every test image goes to the network of
the group its features fall in, and the table says what that costs against sending it to its own family's group.

    python -m src.analysis.grids ckpt_path=A/last.ckpt                   # the groups and their router: grids.json
    python -m src.train -m 'data.families=[noise,rain],[haze,blur,lowlight]'   # one network per group
    python -m src.analysis.route route.grids=<grids run>/grids.json \\
        'route.checkpoints=[<group 1>/last.ckpt,<group 2>/last.ckpt]'     # in the order of grids.json's groups

The router reads the features of the network ``grids.json`` was computed with (its ``weights``; or
``route.router_ckpt``), exactly as the analysis fitted them (the spatial means of every head position). Per
benchmark: the share of images routed to their family's group, the restored PSNR/SSIM with routing, with the
family's own group (the oracle; where the family is in a group) and of the input. Writes ``route.json`` and
``route.md`` and prints the table.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from src.analysis.features import analysed_model, analysis_device
from src.inference.routing import image_group, read_grids, router_checkpoint
from src.results.report import format_cell
from src.run.assemble import build, load_weights
from src.run.config_tree import show_config
from src.run.from_checkpoint import overridden_groups, with_checkpoint
from src.utils.atomic import write_text_atomic
from src.utils.conf import CONF_DIR
from src.utils.errors import exit_on_user_error
from src.utils.run_dir import register_resolvers

log = logging.getLogger(__name__)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def run_route(cfg: DictConfig, overridden: Iterable[str] = ()) -> dict[str, Any]:
    options = cfg.route
    out = Path(cfg.paths.output_dir)
    source = str(options.grids)
    checkpoints = [str(c) for c in (options.checkpoints or [])]
    router, record = read_grids(source, checkpoints)
    device = analysis_device(str(options.device))
    _, analysis, _ = analysed_model(with_checkpoint(cfg, router_checkpoint(record, options.router_ckpt, source)))
    analysis.eval().to(device)
    networks = [load_weights(with_checkpoint(cfg, path), overridden)[1].eval().to(device) for path in checkpoints]
    show_config(cfg, out)
    datamodule = build(cfg.data, "data")
    protocol = networks[0].protocol
    home = {family: k for k, group in enumerate(router.groups) for family in group}
    rows: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        for benchmark, dataset in datamodule.test_sets.items():
            routed, oracle, inputs, hits, ssim = [], [], [], [], []
            for index in range(len(dataset)):
                sample = dataset[index]
                lq, gt, family = sample["lq"], sample["gt"][None].to(device), sample["family"]
                group = image_group(router, analysis, lq, device)
                pred = networks[group](lq[None].to(device)).float().clamp(0, 1)
                scores = protocol.per_image(pred, gt)
                routed.append(float(scores["psnr"][0]))
                ssim.append(float(scores["ssim"][0]))
                inputs.append(float(protocol.per_image(lq[None].to(device).float(), gt)["psnr"][0]))
                if family in home:
                    hits.append(group == home[family])
                    own = pred if group == home[family] else networks[home[family]](lq[None].to(device)).float()
                    oracle.append(float(protocol.per_image(own.clamp(0, 1), gt)["psnr"][0]))
            rows[benchmark] = {"images": len(dataset), "routed_to_family_group": _mean(hits) if hits else None,
                               "input_psnr": _mean(inputs), "routed_psnr": _mean(routed), "routed_ssim": _mean(ssim),
                               "family_group_psnr": _mean(oracle) if oracle else None}
            log.info("route: %s done", benchmark)
    result = {"grids": source, "groups": router.groups, "checkpoints": checkpoints, "metrics": protocol.name,
              "benchmarks": rows}
    write_text_atomic(out / "route.json", json.dumps(result, indent=1) + "\n")
    table = markdown(result)
    write_text_atomic(out / "route.md", table + "\n")
    print(table)
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Routing by {result['grids']} to {len(result['groups'])} group networks {result['groups']} "
             f"({result['metrics']} PSNR, dB)", "",
             "| benchmark | images | routed to its family's group | input PSNR | routed PSNR | routed SSIM | "
             "family's group PSNR |", "|---|---|---|---|---|---|---|"]
    for name, row in result["benchmarks"].items():
        share = row["routed_to_family_group"]
        cells = [name, str(row["images"]), "-" if share is None else f"{share:.0%}",
                 format_cell(row["input_psnr"], 2), format_cell(row["routed_psnr"], 2),
                 format_cell(row["routed_ssim"], 4), format_cell(row["family_group_psnr"], 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="route")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    run_route(cfg, overridden_groups())


register_resolvers()

if __name__ == "__main__":
    main()
