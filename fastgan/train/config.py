"""The training configuration: one flat dataclass, read from TOML and/or command-line options,
validated with errors that name the option (``--batch``), resolved to the recipe's defaults,
and stored in every checkpoint as a plain dict (so loading needs no pickled classes)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

RECIPES = ("pix2pix", "mask-removal", "simgan", "completion", "vae")
GAN_LOSSES = ("vanilla", "lsgan", "hinge")
BASE_RECON = ("l1", "l2", "cosine-sum", "cosine-mean", "ssim", "ssim+l1")
RECON_LOSSES = BASE_RECON + tuple(f"masked-{r}" for r in BASE_RECON)
OCCLUSIONS = ("none", "nose-mask", "blur", "partial", "full", "square", "strokes", "mix")
# pix2pix / mask-removal output: "none" the generator's image as is; "given" the input kept
# outside the true mask (inference needs --mask); "predicted" the generator also predicts
# the mask and the input is kept outside it (a given mask overrides the prediction).
COMPOSE = ("none", "given", "predicted")

# Per-recipe defaults for the options left at None.
# pix2pix and mask-removal: the best configuration measured (README, Quality): the mask
# predicted and the input kept outside it, the generator's EMA for inference, the learning
# rate decayed to 0 over the second half of the run (of --steps or --minutes); for pix2pix
# SSIM + L1 over the occluded region (normalised by its area, so that the GAN term does not
# outweigh a loss that composing confines to ~14 % of the pixels).
_RECONSTRUCTION = dict(compose="predicted", ema=0.999, lr_decay="linear")
RECIPE_DEFAULTS = {
    "pix2pix": dict(occlusion="nose-mask", recon_loss="masked-ssim+l1", recon_weight=100.0, **_RECONSTRUCTION),
    "mask-removal": dict(occlusion="nose-mask", recon_loss="cosine-sum", recon_weight=100.0,
                         **_RECONSTRUCTION),
    "simgan": dict(occlusion="none", recon_loss="l1", recon_weight=1.0, ema=0.0, lr_decay="none"),
    "completion": dict(occlusion="square", recon_loss="masked-l1", recon_weight=100.0, ema=0.0,
                       lr_decay="none"),
    "vae": dict(occlusion="nose-mask", recon_loss="ssim+l1", recon_weight=1.0, ema=0.0, lr_decay="none"),
}

# Options that may differ when a run is resumed (they do not change what is computed).
RESUMABLE = {"steps", "minutes", "log_every", "save_every", "val_every", "keep_last", "workers",
             "tensorboard", "progress", "resume", "out", "data", "max_bad_steps", "compile",
             "compile_backend", "cuda_graphs"}


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the option."""


@dataclass
class TrainConfig:
    """Every training option; ``fastgan train --help`` shows them as ``--name-with-dashes``."""

    recipe: str = field(default="pix2pix", metadata={"help": "application: " + ", ".join(RECIPES)})
    data: str = field(default="synthetic", metadata={"help": "'synthetic' or an image / CelebA folder"})
    size: int = field(default=64, metadata={"help": "image side in pixels"})
    batch: int = field(default=16, metadata={"help": "images per step (per process under torchrun)"})
    steps: int | None = field(default=None, metadata={"help": "stop after this many steps"})
    minutes: float | None = field(default=None, metadata={"help": "stop after this many minutes"})
    occlusion: str | None = field(default=None, metadata={"help": "occlusion kind (recipe default)"})
    out: str = field(default="runs/train", metadata={"help": "output folder"})
    resume: bool = field(default=False, metadata={"help": "continue the run in --out"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    log_every: int = field(default=50, metadata={"help": "steps between metric records"})
    save_every: int = field(default=500, metadata={"help": "steps between checkpoints"})
    val_every: int | None = field(default=None, metadata={"help": "steps between validations (--save-every)"})
    keep_last: int = field(default=3, metadata={"help": "step checkpoints kept (plus best.pt)"})
    compile: bool | None = field(default=None, metadata={"help": "torch.compile the G and D steps (default: on GPUs)"})
    compile_backend: str = field(default="inductor", metadata={"help": "torch.compile backend"})
    cuda_graphs: bool = field(default=False, metadata={"help": "CUDA graphs (compile mode reduce-overhead)"})
    amp: str = field(default="auto", metadata={"help": "auto (bf16 on GPUs with it), bf16 or fp32"})
    channels_last: bool | None = field(default=None, metadata={"help": "channels_last layout (default: on GPUs)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    workers: int | None = field(default=None, metadata={"help": "data worker processes (auto)"})
    cache: str = field(default="memory", metadata={"help": "dataset cache: memory, none or a file"})
    synthetic_n: int = field(default=2048, metadata={"help": "synthetic faces in the training set"})
    val_images: int = field(default=256, metadata={"help": "held-out images per validation"})
    samples: int = field(default=8, metadata={"help": "rows in the sample grids"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate (generator)"})
    lr_d: float | None = field(default=None, metadata={"help": "discriminator learning rate (--lr)"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2"})
    lr_decay: str | None = field(default=None, metadata={"help": "none, or linear to 0 at the end of --steps or --minutes (recipe default)"})
    ema: float | None = field(default=None, metadata={"help": "decay of the generator's weight EMA used for validation and inference, 0: none (recipe default)"})
    decay_start: float = field(default=0.5, metadata={"help": "fraction of --steps where decay starts"})
    gan_loss: str = field(default="vanilla", metadata={"help": "vanilla, lsgan or hinge"})
    gan_weight: float = field(default=1.0, metadata={"help": "weight of the generator's adversarial loss"})
    recon_loss: str | None = field(default=None, metadata={"help": "reconstruction loss (recipe default)"})
    recon_weight: float | None = field(default=None, metadata={"help": "its weight (lambda)"})
    compose: str | None = field(default=None, metadata={"help": "pix2pix: keep the input outside the mask: none, given or predicted"})
    ngf: int | None = field(default=None, metadata={"help": "generator width (default: by recipe, size and device)"})
    ndf: int | None = field(default=None, metadata={"help": "discriminator width (as --ngf)"})
    n_layers: int = field(default=3, metadata={"help": "PatchGAN layers (3: 70x70)"})
    norm: str = field(default="instance", metadata={"help": "instance, batch or none"})
    dropout: bool = field(default=False, metadata={"help": "pix2pix dropout in the U-Net"})
    history_size: int = field(default=512, metadata={"help": "SimGAN image-history capacity"})
    history_fraction: float = field(default=0.5, metadata={"help": "SimGAN fake fraction from history"})
    selfreg_weight: float = field(default=1.0, metadata={"help": "SimGAN self-regularisation weight"})
    refiner_blocks: int = field(default=4, metadata={"help": "SimGAN refiner ResNet blocks"})
    local_weight: float = field(default=1.0, metadata={"help": "completion: local adversarial weight"})
    parsing_model: str | None = field(default=None, metadata={"help": "completion: torch.export'ed face parser (.pt2, dynamic batch)"})
    parsing_weight: float = field(default=0.0, metadata={"help": "completion: parsing regulariser weight"})
    latent_dim: int = field(default=128, metadata={"help": "VAE latent size"})
    kl_beta: float = field(default=1.0, metadata={"help": "VAE KL weight (beta)"})
    ssim_alpha: float = field(default=0.84, metadata={"help": "VAE: SSIM share of SSIM + L1/L2"})
    mask_head: bool = field(default=False, metadata={"help": "VAE: predict the face mask too"})
    mask_weight: float = field(default=1.0, metadata={"help": "VAE: mask-head loss weight"})
    max_bad_steps: int = field(default=0, metadata={"help": "non-finite steps skipped before stopping"})
    tensorboard: bool = field(default=False, metadata={"help": "also write TensorBoard events"})
    progress: bool = field(default=True, metadata={"help": "progress bar on stderr"})

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        clean = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in names:
                raise ConfigError(f"{source}: unknown option {key!r}")
            clean[name] = value
        if isinstance(clean.get("compose"), bool):   # configs before compose had modes
            clean["compose"] = "given" if clean["compose"] else "none"
        return cls(**clean)

    @classmethod
    def from_saved(cls, saved: dict) -> "TrainConfig":
        """A checkpoint's stored config; options this version no longer has are dropped."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls.from_dict({k: v for k, v in saved.items() if k in names}, source="checkpoint")

    @classmethod
    def from_toml(cls, path: str | Path, overrides: dict | None = None) -> "TrainConfig":
        data = read_options_file(path)
        data.update(overrides or {})
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # -- checks and defaults -------------------------------------------------------------

    def resolved(self, device_type: str = "cuda") -> "TrainConfig":
        """A validated copy with the recipe's defaults filled in (for a run on ``device_type``)."""
        self.validate()
        cfg = dataclasses.replace(self)
        for key, value in RECIPE_DEFAULTS[cfg.recipe].items():
            if getattr(cfg, key) is None:
                setattr(cfg, key, value)
        width = default_width(cfg.recipe, cfg.size, device_type)
        cfg.ngf = width if cfg.ngf is None else cfg.ngf
        cfg.ndf = width if cfg.ndf is None else cfg.ndf
        if cfg.lr_d is None:
            cfg.lr_d = cfg.lr
        if cfg.val_every is None:
            cfg.val_every = cfg.save_every
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def bad(name: str, expected: str, value) -> ConfigError:
            return ConfigError(f"--{name.replace('_', '-')} must be {expected}, got {value!r}")

        def choice(name, options):
            v = getattr(self, name)
            if v not in options:
                raise bad(name, "one of " + ", ".join(options), v)

        def integer(name, minimum, optional=False):
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise bad(name, f"an integer >= {minimum}", v)

        def number(name, lo=0.0, hi=math.inf, optional=False, open_lo=False):
            v = getattr(self, name)
            if v is None and optional:
                return
            ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) \
                and (v > lo if open_lo else v >= lo) and v <= hi
            if not ok:
                rng = f"{'>' if open_lo else '>='} {lo:g}" + (f" and <= {hi:g}" if hi < math.inf else "")
                raise bad(name, f"a finite number {rng}", v)

        def boolean(name):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "true or false", getattr(self, name))

        def string(name, optional=False):
            v = getattr(self, name)
            if not (isinstance(v, str) and v) and not (optional and v is None):
                raise bad(name, "a non-empty string", v)

        choice("recipe", RECIPES)
        string("data")
        string("out")
        integer("size", 16)
        integer("batch", 1)
        integer("steps", 1, optional=True)
        number("minutes", open_lo=True, optional=True)
        if self.occlusion is not None:
            choice("occlusion", OCCLUSIONS)
        integer("seed", 0)
        for name in ("log_every", "save_every", "keep_last", "synthetic_n", "val_images",
                     "n_layers", "history_size", "latent_dim", "refiner_blocks"):
            integer(name, 1)
        integer("ngf", 1, optional=True)
        integer("ndf", 1, optional=True)
        integer("val_every", 1, optional=True)
        integer("workers", 0, optional=True)
        integer("samples", 0)
        integer("max_bad_steps", 0)
        for name in ("resume", "cuda_graphs", "dropout", "mask_head", "tensorboard", "progress"):
            boolean(name)
        for name in ("compile", "channels_last"):   # None: decided by the device
            if getattr(self, name) is not None:
                boolean(name)
        string("compile_backend")
        string("cache")
        choice("amp", ("auto", "bf16", "fp32"))
        if self.compose is not None:
            choice("compose", COMPOSE)
        number("ema", 0, 1, optional=True)
        if self.ema is not None and self.ema >= 1:
            raise bad("ema", "a decay in [0, 1) (0: no EMA)", self.ema)
        if not (isinstance(self.device, str) and (self.device in ("auto", "cpu", "cuda")
                                                   or self.device.startswith("cuda:"))):
            raise bad("device", "auto, cpu, cuda or cuda:N", self.device)
        number("lr", open_lo=True)
        number("lr_d", open_lo=True, optional=True)
        number("beta1", 0, 1)
        number("beta2", 0, 1)
        if self.lr_decay is not None:
            choice("lr_decay", ("none", "linear"))
        number("decay_start", 0, 1)
        choice("gan_loss", GAN_LOSSES)
        if self.recon_loss is not None:
            choice("recon_loss", RECON_LOSSES)
        for name in ("gan_weight", "selfreg_weight", "local_weight", "parsing_weight", "kl_beta", "mask_weight"):
            number(name)
        number("recon_weight", optional=True)
        number("history_fraction", 0, 1)
        number("ssim_alpha", 0, 1)
        choice("norm", ("instance", "batch", "none"))
        string("parsing_model", optional=True)
        if self.steps is None and self.minutes is None:
            raise ConfigError("give --steps N or --minutes M (or both): the run needs an end")
        if self.parsing_weight > 0 and self.parsing_model is None:
            raise ConfigError("--parsing-weight > 0 needs --parsing-model FILE.pt2 (a torch.export'ed "
                              "face parser returning (N, K, H, W) logits)")
        from fastgan.data.datasets import is_paired_folder
        if self.recipe in ("pix2pix", "mask-removal", "completion") and self.occlusion == "none" \
                and not is_paired_folder(self.data):
            raise ConfigError(f"--occlusion none leaves {self.recipe} nothing to reconstruct "
                              "(give an occlusion kind, or paired data with input/ and target/ folders)")
        if self.recipe == "completion" and self.size % 4:
            raise bad("size", "divisible by 4 for completion", self.size)
        if self.recipe == "vae" and self.size & (self.size - 1):
            raise bad("size", "a power of two for vae", self.size)
        if self.recipe in ("pix2pix", "mask-removal") and self.size & (self.size - 1):
            raise bad("size", "a power of two for the U-Net", self.size)
        if self.cuda_graphs and self.compile is False:
            raise ConfigError("--cuda-graphs needs --compile (it is torch.compile's reduce-overhead mode)")


def default_width(recipe: str, size: int, device_type: str) -> int:
    """The default --ngf / --ndf. pix2pix, mask-removal and completion at 64 px or less on a
    CPU: 32 (a quarter of the FLOPs, so more steps in a CPU-minute budget; measured better at
    equal minutes, README Quality); everywhere else the papers' 64."""
    if recipe in ("pix2pix", "mask-removal", "completion") and size <= 64 and device_type == "cpu":
        return 32
    return 64


def read_toml(path: str | Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as e:
            raise ConfigError("reading a TOML config needs Python 3.11+ or the tomli package") from e
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: {str(path)!r} is not a file")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config: {path} is not valid TOML: {e}") from e


def read_options_file(path: str | Path) -> dict:
    """The options of a TOML config file: its top-level keys and those of a [train] table."""
    data = read_toml(path)
    if "train" in data and isinstance(data["train"], dict):
        data = {**{k: v for k, v in data.items() if k != "train"}, **data["train"]}
    return data


def merge_for_resume(saved: dict, given: dict) -> TrainConfig:
    """The checkpoint's config with the explicitly given options that a resume may change;
    any other given option that differs is an error (the run continues as configured)."""
    out = dict(saved)
    for key, value in given.items():
        if key in RESUMABLE:
            out[key] = value
        elif saved.get(key) != value:
            raise ConfigError(f"--{key.replace('_', '-')} {value!r} differs from the resumed run's "
                              f"{saved.get(key)!r}; a resumed run keeps its configuration "
                              "(start a new run in another --out to change it)")
    return TrainConfig.from_saved(out)
