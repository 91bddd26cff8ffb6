"""The FID Inception-v3 (fastgan.metrics.inception): structure and key names of pytorch-fid's weights
file, strict round trip, the hash check and the missing-file message. The real weights are not on
the development machines; the test that needs them skips without them."""

import hashlib

import pytest
import torch

from fastgan.metrics import inception
from fastgan.metrics.inception import (ENV_VAR, INCEPTION_FILENAME, INCEPTION_URL, FIDInceptionV3,
                                       find_inception_weights, load_inception)

# (key, shape) from pytorch-fid's FID Inception (torchvision's Inception3 names, 1008 classes, no AuxLogits)
KNOWN_KEYS = [
    ("Conv2d_1a_3x3.conv.weight", (32, 3, 3, 3)),
    ("Conv2d_1a_3x3.bn.running_var", (32,)),
    ("Conv2d_4a_3x3.conv.weight", (192, 80, 3, 3)),
    ("Mixed_5b.branch_pool.conv.weight", (32, 192, 1, 1)),
    ("Mixed_5d.branch5x5_2.conv.weight", (64, 48, 5, 5)),
    ("Mixed_6a.branch3x3.conv.weight", (384, 288, 3, 3)),
    ("Mixed_6b.branch7x7_2.conv.weight", (128, 128, 1, 7)),
    ("Mixed_6e.branch7x7dbl_5.conv.weight", (192, 192, 1, 7)),
    ("Mixed_7a.branch3x3_2.conv.weight", (320, 192, 3, 3)),
    ("Mixed_7b.branch3x3dbl_1.conv.weight", (448, 1280, 1, 1)),
    ("Mixed_7c.branch3x3_2b.conv.weight", (384, 384, 3, 1)),
    ("Mixed_7c.branch_pool.conv.weight", (192, 2048, 1, 1)),
    ("fc.weight", (1008, 2048)),
    ("fc.bias", (1008,)),
]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


def test_state_dict_has_the_weights_file_layout(net):
    state = net.state_dict()
    # 94 conv + batch-norm units (5 tensors + num_batches_tracked each) and the classifier: the
    # 566 entries the published file holds
    assert len(state) == 566
    assert not any(k.startswith("AuxLogits") for k in state)
    for key, shape in KNOWN_KEYS:
        assert tuple(state[key].shape) == shape, key
    assert all(m.eps == 0.001 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_pooling_branches_follow_the_tensorflow_graph(net):
    assert [net.Mixed_7b.pool, net.Mixed_7c.pool] == ["avg", "max"]
    ones = torch.ones(1, 1, 5, 5)
    # the average pools leave the zero padding out: a constant stays constant at the border
    assert torch.equal(inception._pool3(ones, "avg"), ones)


def test_features_are_2048_wide_for_any_input_size(net):
    with torch.no_grad():
        out = net(torch.rand(1, 3, 40, 56))
    assert out.shape == (1, 2048) and torch.isfinite(out).all()


def test_a_saved_state_dict_round_trips_strictly(net, tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(net.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_inception(path, sha256=digest)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    ours = net.state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in loaded.state_dict().items())
    with pytest.raises(ValueError, match="SHA-256"):
        load_inception(path)  # not the published file


def test_wrong_files_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="does not hold the FID Inception-v3 weights"):
        load_inception(path, sha256=None)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a loadable state dict"):
        load_inception(junk, sha256=None)


def test_missing_weights_say_which_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError) as e:
        load_inception(missing)
    msg = str(e.value)
    for part in (str(missing), INCEPTION_FILENAME, INCEPTION_URL, "--inception-weights", ENV_VAR):
        assert part in msg
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        find_inception_weights()
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert find_inception_weights() is None
    with pytest.raises(FileNotFoundError, match=INCEPTION_FILENAME):
        load_inception()


def test_the_real_weights_load_and_give_features():
    try:
        path = find_inception_weights()
    except FileNotFoundError:
        path = None
    if path is None:
        pytest.skip(f"{INCEPTION_FILENAME} is not here (set {ENV_VAR}); its hash and strict load are unchecked")
    net = load_inception(path)  # checks the SHA-256
    with torch.no_grad():
        f = net(torch.rand(2, 3, 64, 64))
    assert f.shape == (2, 2048) and torch.isfinite(f).all() and (f >= 0).all()
