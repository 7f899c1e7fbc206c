"""Does the exported graph compute what the trained module computes? Checked on real rows.

The module (PyTorch, eval mode, its own code: packed sequences and all) and the exported graph
(onnxruntime, or the loaded ``.pt2``) run on the same inputs: every row of the first 16 one at a
time (batch 1), and up to 256 rows in batches of 64; for text and series with a dynamic sequence
length, both again at half the length (texts cut, windows shortened to their last steps). The
bar is Lightning's ``np.allclose(torch_out, ort_out, rtol=1e-3, atol=1e-5)`` on every output.

Example:
    >>> result = check_parity(module, run_graph, x_test, "text", sequence_dynamic=True)
    >>> result["max_abs"], result["passed"]
    (2.9e-07, True)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from trainwright.errors import TrainwrightError

RTOL, ATOL = 1e-3, 1e-5
SINGLE_ROWS, MANY_ROWS, BATCH = 16, 256, 64


def _lengths(x: torch.Tensor, modality: str, sequence_dynamic: bool) -> list[tuple[int, torch.Tensor]]:
    """(sequence length, inputs at that length): the trained length, and half of it when dynamic."""
    if modality not in ("text", "series") or x.ndim < 2:
        return [(0, x)]
    full = x.shape[1]
    cases = [(full, x)]
    half = max(2, full // 2)
    if sequence_dynamic and half < full:
        cases.append((half, x[:, :half] if modality == "text" else x[:, -half:]))  # texts cut; windows keep their last steps
    return cases


def compare(candidate: np.ndarray, reference: np.ndarray) -> dict:
    """Largest absolute and relative differences, and whether every output is within the bar."""
    candidate, reference = np.asarray(candidate, np.float64), np.asarray(reference, np.float64)
    if candidate.shape != reference.shape:
        why = f"shape {candidate.shape} vs {reference.shape}"
        return {"max_abs": float("inf"), "max_rel": float("inf"), "passed": False, "why": why}
    diff = np.abs(candidate - reference)
    big = np.abs(reference) >= ATOL  # a relative difference against a near-zero output means nothing
    max_rel = float((diff[big] / np.abs(reference[big])).max()) if big.any() else 0.0
    same_finite = np.isfinite(candidate).all() == np.isfinite(reference).all()
    passed = bool(same_finite and np.allclose(candidate, reference, rtol=RTOL, atol=ATOL))
    return {"max_abs": float(diff.max()) if diff.size else 0.0, "max_rel": max_rel, "passed": passed}


def check_parity(module: nn.Module, run_graph: Callable[[np.ndarray], np.ndarray], x: torch.Tensor, modality: str,
                 sequence_dynamic: bool) -> dict:
    """Run both on ``x`` (N, ...) model inputs; a dict for parity.json. Raises when any check fails."""
    module.eval()
    checks = []
    for length, inputs in _lengths(torch.as_tensor(x), modality, sequence_dynamic):
        for batch, rows in ((1, min(SINGLE_ROWS, len(inputs))), (min(BATCH, len(inputs)), min(MANY_ROWS, len(inputs)))):
            references, candidates = [], []
            for start in range(0, rows, batch):
                chunk = inputs[start : start + batch]
                with torch.inference_mode():
                    references.append(module(chunk).float().numpy())
                try:
                    candidates.append(np.asarray(run_graph(chunk.numpy()), dtype=np.float32))
                except Exception as error:  # noqa: BLE001 - a runtime that rejects the shape fails the check
                    raise TrainwrightError(f"the exported graph fails on a batch of {len(chunk)}"
                                           + (f" at sequence length {length}" if length else "")
                                           + f": {str(error).splitlines()[0][:300]}") from None
            check = {"batch": batch, "rows": rows, **({"sequence": length} if length else {})}
            checks.append({**check, **compare(np.concatenate(candidates), np.concatenate(references))})
    result = {
        "rtol": RTOL, "atol": ATOL,
        "max_abs": max(c["max_abs"] for c in checks), "max_rel": max(c["max_rel"] for c in checks),
        "passed": all(c["passed"] for c in checks), "checks": checks,
    }
    if not result["passed"]:
        worst = max(checks, key=lambda c: c["max_abs"])
        where = f"batch {worst['batch']}" + (f", sequence length {worst['sequence']}" if "sequence" in worst else "")
        raise TrainwrightError(f"the export does not compute what the model computes: max abs diff {result['max_abs']:.3g}, "
                               f"max rel diff {result['max_rel']:.3g} at {where} (allowed: rtol {RTOL:g}, atol {ATOL:g}); "
                               f"nothing was written")
    return result
