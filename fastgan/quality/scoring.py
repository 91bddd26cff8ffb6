"""The held-out score of a trained row, by recipe, on the test split (CelebA 008001-009000 of
the shared faces) with fixed-seed occlusions (seed 123, as ``fastgan occlude --seed 123``):

- pix2pix, mask-removal, completion: SSIM / PSNR of the full image and of the occluded
  region (``fastgan eval``'s evaluator: scikit-image's Gaussian SSIM); the model is given the
  mask only if it needs one (a model that predicts it is scored on its own prediction). Mask
  removal adds the face-detection rate (OpenCV's Haar cascade, when installed) and FID/KID
  when Inception weights are found; completion adds KID of the completed faces against the
  clean ones on random features (``kid_random``: the realism a local discriminator is for,
  which PSNR does not see).
- vae: SSIM and L1 on the face region (the face ellipse from the landmarks).
- simgan: KID (random features, ``fastgan.quality.features``) of the refined synthetic
  test faces against the real test faces, beside the same for the unrefined faces (the
  baseline), and the self-regularisation distance (mean |refined - synthetic|).
"""

from __future__ import annotations

import warnings

import torch

import fastgan as fg

__all__ = ["score", "EVAL_SEED"]

EVAL_SEED = 123


def score(recipe: str, checkpoint, data: str, *, occlusion: str | None, limit: int | None = None,
          inception_weights: str | None = None) -> dict:
    from fastgan.train.inference import load_reconstructor

    rec = load_reconstructor(checkpoint)
    if recipe in ("pix2pix", "mask-removal", "completion"):
        return _reconstruction(rec, data, occlusion, limit, inception_weights if recipe == "mask-removal" else None,
                               face_detection=recipe == "mask-removal", random_kid=recipe == "completion")
    if recipe == "vae":
        return _vae(rec, data, occlusion, limit)
    if recipe == "simgan":
        return _simgan(rec, data, limit)
    raise ValueError(f"score: unknown recipe {recipe!r}")


def _reconstruction(rec, data, occlusion, limit, inception_weights, *, face_detection, random_kid) -> dict:
    from fastgan.metrics import face_detection as fd
    from fastgan.metrics import inception
    from fastgan.metrics.evaluate import Evaluator, evaluate_checkpoint
    from fastgan.metrics.frechet import SmallSampleWarning

    notes = []
    detector = None
    if face_detection:
        try:
            detector = fd.FaceDetector()
        except ImportError as e:
            notes.append(f"face-detection rate not computed: {e}")
    features = None
    path = inception.find_inception_weights(inception_weights)
    if inception_weights is not None or (face_detection and path is not None):
        features = inception.load_inception(path, sha256=inception.INCEPTION_SHA256)
    elif face_detection:
        notes.append("FID/KID not computed: " + inception.missing_message())
    kid_options = {}
    if random_kid:
        from fastgan.quality.features import RandomFeatures
        features = RandomFeatures()
        kid_options = dict(kid_subsets=50, kid_subset_size=min(500, limit or 500))   # as SimGAN's
    evaluator = Evaluator(feature_net=features, detector=detector, examples=0, **kid_options)
    with warnings.catch_warnings():
        if random_kid:   # random-feature KID is only compared within its own table
            warnings.simplefilter("ignore", SmallSampleWarning)
        result, _, _ = evaluate_checkpoint(evaluator, rec, data, kinds=[occlusion], split="test", limit=limit,
                                           seed=EVAL_SEED, log=lambda *_: None)
    out = {"ssim": result["ssim"], "psnr": result["psnr"], "ssim_occluded": result["masked_ssim"],
           "psnr_occluded": result["masked_psnr"], "images": result["source"]["images"],
           "mask_given": bool(rec.uses_mask)}
    for key in ("face_detection_rate", "face_detection_rate_target"):
        if key in result:
            out[key] = result[key]
    if random_kid:   # not FID: its random-feature value means nothing beside Inception FIDs
        out["kid_random"], out["kid_random_std"] = result["kid"], result["kid_std"]
    elif "fid" in result:
        out.update(fid=result["fid"], kid=result["kid"], kid_std=result["kid_std"])
    if notes:
        out["notes"] = notes
    return out


def _test_chunks(data: str, size: int, occlusion: str, limit: int | None):
    """(clean, occluded, mask, landmarks) chunks of the test split with fixed-seed occlusions."""
    from fastgan.data.datasets import readable_batch
    from fastgan.data.occlusion import make_occluder
    from fastgan.metrics.evaluate import open_eval_data
    from fastgan.metrics.grouping import MASK_CHUNK, occlude_chunk

    ds, _ = open_eval_data(data, size, "test")
    n = len(ds) if limit is None else min(limit, len(ds))
    occluder = make_occluder(occlusion)
    for c, lo in enumerate(range(0, n, MASK_CHUNK)):
        items, idx = readable_batch(ds, range(lo, min(n, lo + MASK_CHUNK)))
        if not idx:
            continue
        clean = items["image"].float() / 255
        lm = items.get("landmarks")
        occluded, mask = occlude_chunk(clean, occlusion, c, EVAL_SEED, lm, occluder)
        yield clean, occluded, mask, lm


def _vae(rec, data, occlusion, limit) -> dict:
    from fastgan.data import face_region

    ssim = l1 = 0.0
    n = 0
    for clean, occluded, _, lm in _test_chunks(data, rec.size, occlusion, limit):
        out = rec(occluded).float()
        face = face_region(clean, lm).float()
        ssim += fg.ssim(out, clean, mask=face, reduction="none").sum().item()
        per_image = ((out - clean).abs() * face).flatten(1).sum(1) / (3 * face.flatten(1).sum(1)).clamp(min=1)
        l1 += per_image.sum().item()
        n += clean.shape[0]
    return {"ssim_face": ssim / n, "l1_face": l1 / n, "images": n}


def _simgan(rec, data, limit) -> dict:
    from fastgan.data.datasets import get_batch
    from fastgan.metrics.frechet import SmallSampleWarning, kid
    from fastgan.quality.features import RandomFeatures
    from fastgan.train.data import simgan_domains

    n = limit or 1000
    domains = simgan_domains(data, "test", rec.size, cache="none", seed=0, synthetic_n=n, limit=n)
    net = RandomFeatures()
    feats = {"real": [], "synthetic": [], "refined": []}
    selfreg = 0.0
    count = 0
    total = min(len(domains), n)
    for lo in range(0, total, 64):
        batch = get_batch(domains, list(range(lo, min(total, lo + 64))))
        syn, real = batch["synthetic"].float() / 255, batch["real"].float() / 255
        refined = rec(syn).float()
        feats["real"].append(net(real))
        feats["synthetic"].append(net(syn))
        feats["refined"].append(net(refined))
        selfreg += (refined - syn).abs().mean((1, 2, 3)).sum().item()
        count += syn.shape[0]
    real = torch.cat(feats["real"]).double().numpy()
    subsets = dict(subsets=50, subset_size=min(500, count))
    with warnings.catch_warnings():   # both KIDs on the same counts: comparable with each other
        warnings.simplefilter("ignore", SmallSampleWarning)
        refined_kid = kid(torch.cat(feats["refined"]).double().numpy(), real, **subsets)
        synthetic_kid = kid(torch.cat(feats["synthetic"]).double().numpy(), real, **subsets)
    return {"kid_refined": refined_kid[0], "kid_refined_std": refined_kid[1],
            "kid_unrefined": synthetic_kid[0], "kid_unrefined_std": synthetic_kid[1],
            "selfreg_l1": selfreg / count, "images": count}
