"""``fastgan train`` and ``fastgan infer``: ``add_parsers(subparsers)`` adds both.

Every :class:`TrainConfig` field is an option (``--log-every``, ``--no-compile``, ...); only
the options given on the command line override ``--config FILE.toml``, and only those are
compared with a resumed run's configuration."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from fastgan.train.config import RECIPES, ConfigError, TrainConfig

__all__ = ["add_parsers", "config_from_args"]

_TYPES = {"int": int, "float": float, "str": str}
_SHORT_HELP = {"steps": "N", "minutes": "M", "out": "OUT", "data": "DIR|synthetic", "size": "S", "batch": "B",
               "occlusion": "KIND", "seed": "N", "log_every": "N", "save_every": "N"}


def _option_type(f: dataclasses.Field):
    names = [t.strip() for t in str(f.type).split("|")]
    base = next(t for t in names if t != "None")
    return base


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a face-reconstruction GAN (pix2pix, mask-removal, simgan, completion, vae)",
        description="Train RECIPE on --data (an image folder, a CelebA folder or 'synthetic') with "
                    "occlusions made on the fly. Writes OUT/metrics.jsonl, OUT/samples/*.png and "
                    "OUT/checkpoints/ (atomic; --resume continues exactly). Under torchrun, one "
                    "process per GPU (or CPU process, gloo): torchrun --nproc_per_node=N -m fastgan train ...",
        argument_default=argparse.SUPPRESS)
    p.add_argument("recipe", choices=RECIPES, help="the application")
    p.add_argument("--config", metavar="FILE.toml", help="options from a TOML file (keys as below, _ or -)")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "recipe":
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = _option_type(f)
        help_text = f.metadata.get("help", "")
        default = f.default
        if kind == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction,
                           help=f"{help_text} (default {'on' if default else 'off'})")
        else:
            shown = "" if default is None else f" (default {default})"
            p.add_argument(flag, type=_TYPES[kind], metavar=_SHORT_HELP.get(f.name, kind.upper()),
                           help=help_text + shown)
    p.set_defaults(func=_cmd_train)


def _add_infer(sub) -> None:
    p = sub.add_parser(
        "infer", help="reconstruct a folder of images with a trained checkpoint",
        description="Reconstruct every image of IN_DIR (centre-cropped and resized to the model size) "
                    "into OUT_DIR/NAME.png. CHECKPOINT: a .pt file or a run's checkpoints/ folder.")
    p.add_argument("checkpoint", help="checkpoint file (e.g. OUT/checkpoints/best.pt) or folder")
    p.add_argument("in_dir", help="folder of (occluded) images")
    p.add_argument("out_dir", help="output folder")
    p.add_argument("--mask", metavar="DIR", default=None,
                   help="masks with the same names (255 = occluded); needed by completion and --compose given models; a pix2pix model that predicts the mask uses these instead")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch", type=int, default=16, help="images per batch (default 16)")
    p.set_defaults(func=_cmd_infer)


def add_parsers(sub) -> None:
    _add_train(sub)
    _add_infer(sub)


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, dict]:
    """(config, the options given explicitly) from parsed ``fastgan train`` arguments."""
    given = {k: v for k, v in vars(args).items() if k not in ("func", "command", "config")}
    if getattr(args, "config", None):
        from fastgan.train.config import read_options_file
        from_file = {k.replace("-", "_"): v for k, v in read_options_file(args.config).items()}
        from_file.pop("recipe", None)   # the positional RECIPE wins
        given = {**from_file, **given}
    return TrainConfig.from_dict(given, source=getattr(args, "config", None) or "fastgan train"), given


def _cmd_train(args: argparse.Namespace) -> int:
    from fastgan.train.loop import OutputWriteError, TrainingDiverged, train

    try:
        cfg, given = config_from_args(args)
        train(cfg, given)
    except (ConfigError, OutputWriteError) as e:
        print(f"fastgan train: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"fastgan train: {e}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as e:
        print(f"fastgan train: error: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from fastgan.train.inference import reconstruct_folder

    try:
        written = reconstruct_folder(args.checkpoint, args.in_dir, args.out_dir, args.mask,
                                     device=args.device, batch=args.batch)
    except (ValueError, FileNotFoundError) as e:
        print(f"fastgan infer: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} images to {args.out_dir}")
    return 0
