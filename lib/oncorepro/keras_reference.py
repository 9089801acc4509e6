"""Keras reference models for the parity checks; runs in a TensorFlow process of its own (never imports torch).

    python -m oncorepro.keras_reference efficientnetv2b0 --images in.npz --output out.npz \
        [--save-weights weights.npz] [--seed 0]
    python -m oncorepro.keras_reference mobilenetv2 --images in.npz --output out.npz --tensors tensors.npz \
        [--alpha 0.35]

``--images``: npz with ``images`` (N, H, W, 3) float32 RGB pixels in [0, 255].
``--output``: npz with ``features`` (N, C) global-average-pooled, ``feature_map`` (N, h, w, C) the last feature map
(out_relu / top_activation), ``keras_version`` and ``tensorflow_version``.
``efficientnetv2b0``: keras.applications.EfficientNetV2B0(include_top=False, weights=None,
include_preprocessing=True) with seeded random weights (Keras initialisers for kernels; BatchNorm statistics,
gammas, betas and biases randomised so that each one matters); ``--save-weights`` writes every variable as
``<layer>/<variable>``.
``mobilenetv2``: keras.applications.MobileNetV2(alpha, include_top=False, weights=None) filled by variable name
from ``--tensors`` (every tensor used once, every variable filled), inputs through mobilenet_v2.preprocess_input
(x/127.5 - 1, as Teachable Machine does).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402  (tensorflow before anything that could pull in torch)
import keras  # noqa: E402
import numpy as np  # noqa: E402


def _load_images(path: str) -> np.ndarray:
    with np.load(path) as data:
        images = data["images"].astype(np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        sys.exit(f"{path}: 'images' must be (N, H, W, 3), got {images.shape}")
    return images


def _save_outputs(path: str, feature_map: np.ndarray) -> None:
    np.savez(
        path, features=feature_map.mean(axis=(1, 2)), feature_map=feature_map,
        keras_version=np.array(keras.__version__), tensorflow_version=np.array(tf.__version__),
    )


def _randomise_statistics(model: keras.Model, seed: int) -> None:
    """BatchNorm statistics, gammas, betas and biases drawn at random (kernels keep Keras' seeded init)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        kind = variable.path.rpartition("/")[2]
        shape = tuple(variable.shape)
        if kind in ("beta", "bias", "moving_mean"):
            variable.assign(rng.normal(0.0, 0.1, shape).astype(np.float32))
        elif kind == "gamma":
            variable.assign(rng.uniform(0.8, 1.2, shape).astype(np.float32))
        elif kind == "moving_variance":
            variable.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))


def efficientnetv2b0(images_path: str, output_path: str, weights_path: str | None, seed: int) -> None:
    images = _load_images(images_path)
    keras.utils.set_random_seed(seed)
    base = keras.applications.EfficientNetV2B0(
        include_top=False, weights=None, pooling=None, input_shape=images.shape[1:], include_preprocessing=True
    )
    _randomise_statistics(base, seed)
    _save_outputs(output_path, np.asarray(base(images, training=False)))
    if weights_path:
        np.savez(weights_path, **{v.path: np.asarray(v.numpy()) for v in base.weights})


def mobilenetv2(images_path: str, output_path: str, tensors_path: str, alpha: float) -> None:
    images = _load_images(images_path)
    base = keras.applications.MobileNetV2(
        alpha=alpha, include_top=False, weights=None, pooling=None, input_shape=images.shape[1:]
    )
    with np.load(tensors_path) as data:
        tensors = {name: data[name] for name in data.files}
    unused = set(tensors)
    for variable in base.weights:
        layer, _, kind = variable.path.rpartition("/")
        # Keras 2 / TF.js name depthwise kernels "depthwise_kernel", Keras 3 "kernel".
        candidates = [variable.path, f"{layer}/depthwise_kernel"] if kind == "kernel" else [variable.path]
        name = next((c for c in candidates if c in unused), None)
        if name is None:
            sys.exit(f"{tensors_path}: no tensor for Keras variable {variable.path!r}")
        if tuple(tensors[name].shape) != tuple(variable.shape):
            sys.exit(f"{tensors_path}: tensor {name!r} {tensors[name].shape} does not fit {tuple(variable.shape)}")
        variable.assign(tensors[name])
        unused.discard(name)
    if unused:
        sys.exit(f"{tensors_path}: {len(unused)} tensors fit no Keras variable: {sorted(unused)[:5]}")
    inputs = keras.applications.mobilenet_v2.preprocess_input(images.copy())
    _save_outputs(output_path, np.asarray(base(inputs, training=False)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m oncorepro.keras_reference", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    effnet = commands.add_parser("efficientnetv2b0", help="EfficientNetV2B0, seeded random weights")
    mobilenet = commands.add_parser("mobilenetv2", help="MobileNetV2 filled with given tensors")
    for command in (effnet, mobilenet):
        command.add_argument("--images", required=True)
        command.add_argument("--output", required=True)
    effnet.add_argument("--save-weights")
    effnet.add_argument("--seed", type=int, default=0)
    mobilenet.add_argument("--tensors", required=True)
    mobilenet.add_argument("--alpha", type=float, default=0.35)
    args = parser.parse_args(argv)
    if args.command == "efficientnetv2b0":
        efficientnetv2b0(args.images, args.output, args.save_weights, args.seed)
    else:
        mobilenetv2(args.images, args.output, args.tensors, args.alpha)


if __name__ == "__main__":
    main()
