"""ConStyle v2 against the official vectors (``../shared/reference/constyle_v2``, weights rebuilt by its
``materialise.py``): the prompter's embeddings, features and class logits, the NAFNet it prompts, and the
release's test path through the restorer's own prompter copy; main and perturbed (BN statistics, NAFBlock
scales), all within 1e-5."""

from __future__ import annotations

import torch

from src.models.layers.constyle import StyleEncoder
from src.models.official import constyle_v2, load_strict
from tests.models.official.test_reference_vectors import folder_weights


def test_prompter_and_prompted_nafnet_main_and_perturbed(reference) -> None:
    ref = reference("constyle_v2")
    weights = folder_weights(ref, "weights")
    x = ref.tensor("input", "input")
    for overrides, output in ((None, "output"), ("perturbed_overrides", "perturbed_output")):
        state = {**weights, **(ref.tensors(overrides) if overrides else {})}
        prompter = StyleEncoder().eval()
        load_strict(prompter, constyle_v2.convert_prompter(
            {k.removeprefix("prompter."): v for k, v in state.items() if k.startswith("prompter.")}))
        model = constyle_v2.build(ref.meta["tiny_kwargs"]["net_g"]).eval()
        load_strict(model, constyle_v2.convert({k.removeprefix("net_g."): v for k, v in state.items()
                                                if k.startswith("net_g.")}))
        expected = ref.tensors(output)
        with torch.no_grad():
            (q0, q1), features, logits = prompter(x)
            restored = model.net.restore(x, q1, features)
            internal = model(x)  # the restorer's own prompter copy, as the release's test
        checks = {"prompt_q0": q0, "prompt_q1": q1, "predict": logits, "output": restored,
                  "output_internal": internal, **{f"prompt_fea{i}": f for i, f in enumerate(features)}}
        for name, value in checks.items():
            assert (value - expected[name]).abs().max() < 1e-5, f"{output}: {name}"
