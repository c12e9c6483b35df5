"""Perceive-IR's stage-2 network against the official vectors (``../shared/reference/perceive_ir``, weights rebuilt
by its ``materialise.py``): both decoder passes and their mean, main and perturbed, with CLIP's text feature and
image features injected in the release's call order (input, then the first pass's output); within 1e-5."""

from __future__ import annotations

import torch

from src.models.official import load_strict, perceive_ir
from tests.models.official.test_reference_vectors import folder_weights


def test_both_passes_and_their_mean(reference) -> None:
    ref = reference("perceive_ir")
    weights = folder_weights(ref, "weights")
    inputs = ref.tensors("input")
    for overrides, output in ((None, "output"), ("perturbed_overrides", "perturbed_output")):
        model = perceive_ir.build(ref.meta["tiny_kwargs"]).eval()
        load_strict(model, perceive_ir.convert({**weights, **(ref.tensors(overrides) if overrides else {})}))
        assert sum(p.numel() for p in model.parameters()) == ref.meta["tiny_param_count"]
        seen = []

        def second_image(out, seen=seen):
            seen.append(out)
            return inputs["clip_image_feature_1"]

        with torch.no_grad():
            passes = model.net.passes(inputs["input"], inputs["text_feature"], inputs["clip_image_feature_0"],
                                      second_image)
        expected = ref.tensors(output)
        assert len(seen) == 1 and torch.equal(seen[0], passes[0])  # CLIP reads the first pass's output
        for index, value in enumerate(passes):
            assert (value - expected[f"output_iter{index}"]).abs().max() < 1e-5, f"{output} pass {index}"
        assert (torch.stack(passes).mean(0) - expected["output"]).abs().max() < 1e-5, output
