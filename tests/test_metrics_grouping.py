"""Groups (fastgan.metrics.grouping): area bins, per-group means, fixed-seed evaluation masks."""

import math

import pytest
import torch

from fastgan.metrics.grouping import (AREA_BINS, MASK_CHUNK, area_bin, group_summaries, kind_seed,
                                      occlude_chunk, summarise)


@pytest.mark.parametrize("area,label", [(0.0, "0-10%"), (0.0999, "0-10%"), (0.1, "10-20%"), (0.3, "30-40%"),
                                        (0.29999, "20-30%"), (0.7, "70-80%"), (0.95, "90-100%"), (1.0, "90-100%")])
def test_area_bins(area, label):
    assert area_bin(area) == label


def test_area_bin_refuses_fractions_outside_0_1():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        area_bin(1.5)
    assert len(AREA_BINS) == 10 and AREA_BINS[0] == "0-10%" and AREA_BINS[-1] == "90-100%"


def test_group_summaries_count_and_average_each_group():
    per = {"ssim": torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5], dtype=torch.float64),
           "masked_ssim": torch.tensor([0.5, math.nan, 0.3, 0.2, 0.1], dtype=torch.float64)}
    kinds = ["blur", "blur", "square", "square", "square"]
    areas = torch.tensor([0.05, 0.15, 0.15, 0.35, 0.32])
    g = group_summaries(per, kinds, areas)
    assert list(g["kind"]) == ["blur", "square"]
    assert g["kind"]["blur"]["count"] == 2 and g["kind"]["blur"]["ssim"] == pytest.approx(0.85)
    assert g["kind"]["blur"]["masked_ssim"] == pytest.approx(0.5)   # NaN left out
    assert g["kind"]["blur"]["masked_count"] == 1
    assert list(g["area"]) == ["0-10%", "10-20%", "30-40%"]
    assert g["area"]["10-20%"]["count"] == 2 and g["area"]["10-20%"]["ssim"] == pytest.approx(0.75)
    assert g["area"]["30-40%"]["masked_ssim"] == pytest.approx(0.15)
    assert g["kind_area"]["square"]["10-20%"]["count"] == 1
    assert "0-10%" not in g["kind_area"]["square"]
    assert summarise(per)["count"] == 5


def test_group_summaries_without_masks_have_kind_groups_only():
    g = group_summaries({"ssim": torch.tensor([0.5, 0.7])}, ["all", "all"])
    assert list(g) == ["kind"] and g["kind"]["all"]["ssim"] == pytest.approx(0.6)


def test_evaluation_masks_are_fixed_by_kind_chunk_and_seed():
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = occlude_chunk(images, "square", 0)
    b = occlude_chunk(images, "square", 0)
    assert torch.equal(a[1], b[1]) and torch.equal(a[0], b[0])
    assert not torch.equal(a[1], occlude_chunk(images, "square", 1)[1])
    assert not torch.equal(a[1], occlude_chunk(images, "square", 0, seed=1)[1])
    # the seed is the same in every Python process (no hash() randomisation)
    assert kind_seed("square") == kind_seed("square", 0) != kind_seed("blur")
    assert kind_seed("nose-mask") == 4135848997472254053
    with pytest.raises(ValueError, match="at most"):
        occlude_chunk(torch.rand(MASK_CHUNK + 1, 3, 16, 16), "square", 0)
