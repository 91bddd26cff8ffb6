"""The evaluation run: batches of (prediction, target, mask, kind) in, metrics.json and report out.

``Evaluator`` accumulates per-image metrics (``fastgan.metrics.image``), optional LPIPS and
face-detection results, features for FID/KID and the best/worst examples; ``finish()`` groups
them (``fastgan.metrics.grouping``). ``evaluate_pairs`` (folders of files) and
``evaluate_checkpoint`` (a trained generator on fixed-seed occlusions) feed it.

FID and KID compare the outputs of each kind with the *clean* images (the targets), computed once
per image (``add_reference``): the papers' "FID of the reconstructions against the real faces".
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import torch

from fastgan.data.io import make_grid, to_uint8
from fastgan.data.occlusion import SINGLE_KINDS
from fastgan.metrics import frechet
from fastgan.metrics.grouping import MASK_CHUNK, group_summaries, occlude_chunk, summarise
from fastgan.metrics.image import image_metrics, ms_ssim_scales
from fastgan.metrics.report import write_csv, write_json, write_report

ALL_KINDS = SINGLE_KINDS   # "--occlusion all": every single kind (mix is their blend)


class _Examples:
    """The ``k`` lowest and highest scoring images, kept as uint8 rows (input, mask, output, target)."""

    def __init__(self, k: int):
        self.k = k
        self.best: list[tuple[float, torch.Tensor]] = []
        self.worst: list[tuple[float, torch.Tensor]] = []

    def add(self, scores: torch.Tensor, stacks: torch.Tensor) -> None:
        """scores (N,) (NaN ignored), stacks (N, R, 3, H, W) uint8."""
        items = [(float(s), stacks[i]) for i, s in enumerate(scores) if not math.isnan(float(s))]
        self.best = sorted(self.best + items, key=lambda t: -t[0])[:self.k]
        self.worst = sorted(self.worst + items, key=lambda t: t[0])[:self.k]

    def grid(self, which: list) -> torch.Tensor:
        rows = torch.stack([t for _, t in which]).transpose(0, 1)  # (R, K, 3, H, W)
        return make_grid(rows.flatten(0, 1), nrow=len(which))


class Evaluator:
    """Accumulates one evaluation. ``feature_net``: images in [0, 1] -> (N, D) features for
    FID/KID (the FID Inception network, or any other); ``lpips`` and ``detector`` optional."""

    def __init__(self, *, feature_net=None, lpips=None, detector=None, examples: int = 8,
                 kid_subsets: int = 100, kid_subset_size: int = 1000, device="cpu"):
        self.feature_net, self.lpips, self.detector = feature_net, lpips, detector
        self.device = torch.device(device)
        self.kid_options = dict(subsets=kid_subsets, subset_size=kid_subset_size)
        self.per_image: dict[str, list[torch.Tensor]] = {}
        self.kinds: list[str] = []
        self.names: list[str] = []
        self.features: dict[str, list[torch.Tensor]] = {}
        self.reference_features: list[torch.Tensor] = []
        self.reference_faces: list[torch.Tensor] = []
        self.examples = _Examples(examples) if examples else None
        self.has_inputs = False
        self.size = None

    @torch.no_grad()
    def _features(self, images):
        return self.feature_net(images.to(self.device)).double().cpu()

    @torch.no_grad()
    def add_reference(self, target: torch.Tensor) -> None:
        """The clean images, once each: FID/KID reference features and their face-detection rate."""
        if self.feature_net is not None:
            self.reference_features.append(self._features(target))
        if self.detector is not None:
            self.reference_faces.append(self.detector(target).double())

    @torch.no_grad()
    def add(self, pred, target, mask=None, kind: str = "all", names=None, inputs=None) -> None:
        """One batch: pred, target (N, 3, H, W) in [0, 1], mask (N, 1, H, W) 0/1 (1 = occluded) or
        None, the occlusion kind, the image names and the occluded inputs (optional, shown)."""
        n = pred.shape[0]
        self.size = self.size or tuple(pred.shape[2:])
        per = image_metrics(pred, target, mask)
        if self.lpips is not None:
            per["lpips"] = self.lpips(pred.to(self.device), target.to(self.device)).double().cpu()
        if self.detector is not None:
            per["face_detection_rate"] = self.detector(pred).double()
            if inputs is not None:
                per["face_detection_rate_input"] = self.detector(inputs).double()
        for key, v in per.items():
            self.per_image.setdefault(key, []).append(v)
        self.kinds += [kind] * n
        self.names += list(names) if names is not None else [str(len(self.names) + i) for i in range(n)]
        if self.feature_net is not None:
            self.features.setdefault(kind, []).append(self._features(pred))
        if self.examples is not None:
            score = per.get("masked_ssim", per["ssim"])
            rows = ([inputs] if inputs is not None else []) + ([mask.expand_as(pred)] if mask is not None else [])
            self.has_inputs = inputs is not None
            stack = torch.stack([to_uint8(r.cpu()) for r in rows + [pred, target]], 1)
            self.examples.add(score, stack)

    def _fid_kid(self, notes: list[str]) -> dict:
        """{"all": (fid, kid, kid_std), kind: ...} of the outputs against the reference features."""
        if self.feature_net is None or not self.reference_features:
            return {}
        ref = torch.cat(self.reference_features)
        sets = {k: torch.cat(v) for k, v in self.features.items()}
        if len(sets) > 1:
            sets = {"all": torch.cat(list(sets.values())), **sets}
        out = {}
        for name, feats in sets.items():
            if min(len(feats), len(ref)) < 2:
                notes.append(f"FID/KID of {name}: not computed (fewer than 2 images)")
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", frechet.SmallSampleWarning)
                fid = frechet.fid(feats, ref)
                kid, kid_std = frechet.kid(feats, ref, **self.kid_options)
            for w in caught:
                if issubclass(w.category, frechet.SmallSampleWarning) and "FID" in str(w.message):
                    notes.append(f"{name}: {w.message}")
                    warnings.warn(str(w.message), frechet.SmallSampleWarning, stacklevel=2)
            out[name] = {"fid": fid, "kid": kid, "kid_std": kid_std, "fid_images": len(feats),
                         "fid_reference_images": len(ref)}
        return out

    def finish(self, notes: list[str] | None = None) -> tuple[dict, dict | None, list[dict]]:
        """(result, examples, per-image rows): the overall summary, the groups and the notes."""
        if not self.kinds:
            raise ValueError("eval: no images were evaluated")
        notes = list(notes or [])
        per = {k: torch.cat(v) for k, v in self.per_image.items()}
        areas = per.get("mask_area")
        result = summarise(per)
        result["groups"] = group_summaries(per, self.kinds, areas)
        fk = self._fid_kid(notes)
        single = next(iter(fk.values())) if len(fk) == 1 else fk.get("all")
        if single:
            result.update(single)
        for kind, values in fk.items():
            if kind in result["groups"]["kind"]:
                result["groups"]["kind"][kind].update(values)
        if self.reference_faces:
            result["face_detection_rate_target"] = float(torch.cat(self.reference_faces).mean())
        if self.size is not None:
            result["ms_ssim_scales"] = ms_ssim_scales(min(self.size))
            if result["ms_ssim_scales"] < 5:
                notes.append(f"ms_ssim: {result['ms_ssim_scales']} scales at {self.size[0]}x{self.size[1]} "
                             f"(5 need 161 px); the first weights rescaled to sum 1: compare only at this size")
        result["notes"] = notes
        rows = [{"name": nm, "kind": k, **{key: float(v[i]) for key, v in per.items()}}
                for i, (nm, k) in enumerate(zip(self.names, self.kinds))]
        examples = None
        if self.examples is not None and self.examples.best:
            columns = (["occluded input"] if self.has_inputs else []) + (["mask"] if areas is not None else [])
            examples = {"best": self.examples.grid(self.examples.best),
                        "worst": self.examples.grid(self.examples.worst),
                        "best_scores": [s for s, _ in self.examples.best],
                        "worst_scores": [s for s, _ in self.examples.worst],
                        "score": "masked SSIM" if areas is not None else "SSIM",
                        "columns": ", ".join(columns + ["output", "target"])}
        return result, examples, rows


def write_outputs(out: str | Path, result: dict, examples, rows) -> Path:
    """metrics.json, per_image.csv and report.html under ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", result)
    write_csv(out / "per_image.csv", rows)
    return write_report(out, result, examples)


def evaluate_pairs(evaluator: Evaluator, pred, target, mask=None, *, kind: str = "all", batch: int = 32,
                   log=print) -> tuple[dict, dict | None, list[dict]]:
    """Evaluate the files of ``pred`` against ``target`` (and ``mask``), paired by name."""
    from fastgan.metrics.pairs import load_batch, pair_files

    pairs = pair_files(pred, target, mask)
    start, size = time.perf_counter(), None
    for lo in range(0, len(pairs), batch):
        p, t, m = load_batch(pairs[lo:lo + batch], size, reference=pairs[0][2])
        size = tuple(t.shape[2:])
        evaluator.add_reference(t)
        evaluator.add(p, t, m, kind, names=[x[0] for x in pairs[lo:lo + batch]])
    log(f"eval: {len(pairs)} pairs in {time.perf_counter() - start:.1f} s")
    result, examples, rows = evaluator.finish()
    result["source"] = {"mode": "pairs", "pred": str(pred), "target": str(target), "mask": str(mask) if mask else None}
    return result, examples, rows


def resolve_kinds(occlusion: str | None, default: str | None) -> list[str]:
    """The kinds to evaluate: ``occlusion`` ("all": every single kind), else the checkpoint's."""
    from fastgan.data.occlusion import KINDS

    if occlusion == "all":
        return list(ALL_KINDS)
    kind = occlusion or default or "mix"
    if kind not in KINDS:
        raise ValueError(f"eval: occlusion kind must be one of {', '.join(KINDS)} or all, got {kind!r}")
    return [kind]


def open_eval_data(data: str, size: int, split: str = "all"):
    """(dataset, names) of the evaluation images at ``size``: a folder, a CelebA layout or
    "synthetic"; ``split`` other than "all" takes that CelebA split (the partition file, else the
    numbered ranges of the shared faces: 000001-008000 train, 008001-009000 test)."""
    from fastgan.data import SHARED_FACES_SPLIT, CelebA
    from fastgan.data.export import open_source

    if split == "all":
        return open_source(data, size, quiet=True)
    ds = CelebA(data, split, size, ranges=SHARED_FACES_SPLIT, quiet=True)
    return ds, [r[0].relative_to(ds.image_dir).with_suffix("").as_posix() for r in ds.records]


@torch.no_grad()
def evaluate_checkpoint(evaluator: Evaluator, reconstructor, data: str, *, kinds: list[str], split: str = "all",
                        limit: int | None = None, seed: int = 0, batch: int = 32,
                        log=print) -> tuple[dict, dict | None, list[dict]]:
    """Occlude the images of ``data`` with fixed-seed masks of each kind, reconstruct them with
    ``reconstructor`` (occluded, mask) -> output, and evaluate the outputs against the clean images."""
    from fastgan.data.datasets import describe_skipped, readable_batch
    from fastgan.data.occlusion import make_occluder

    ds, names = open_eval_data(data, reconstructor.size, split)
    n = len(ds) if limit is None else min(limit, len(ds))
    occluders = {k: make_occluder(k) for k in kinds}
    device = evaluator.device
    start = time.perf_counter()
    for c, lo in enumerate(range(0, n, MASK_CHUNK)):
        items, idx = readable_batch(ds, range(lo, min(n, lo + MASK_CHUNK)))   # unreadable files: left out
        if not idx:
            continue
        clean = items["image"].to(device).float() / 255
        lm = items.get("landmarks")
        evaluator.add_reference(clean)
        for kind in kinds:
            occluded, mask = occlude_chunk(clean, kind, c, seed, lm, occluders[kind])
            # the mask only where the model needs it: one that predicts it is scored on its own
            given = mask if getattr(reconstructor, "uses_mask", True) else None
            outs = [reconstructor(occluded[i:i + batch], None if given is None else given[i:i + batch])
                    .float().clamp(0, 1) for i in range(0, len(idx), batch)]
            evaluator.add(torch.cat(outs), clean, mask, kind, names=[names[i] for i in idx], inputs=occluded)
        done = idx[-1] + 1
        if c % 8 == 7 or done == n:
            took = time.perf_counter() - start
            log(f"eval: {done}/{n} images x {len(kinds)} kinds, {done * len(kinds) / max(took, 1e-9):.1f} img/s")
    skipped = getattr(ds, "skipped", [])
    notes = [f"skipped {len(skipped)} unreadable files: {describe_skipped(skipped)}"] if skipped else []
    result, examples, rows = evaluator.finish(notes)
    result["source"] = {"mode": "checkpoint", "data": str(data), "split": split, "images": n,
                        "kinds": ", ".join(kinds), "seed": seed, "size": reconstructor.size}
    return result, examples, rows
