"""The trainer: one loop for every recipe. It owns what makes training fast and safe, so the
recipes stay plain math:

- speed: ``torch.compile(fullgraph=True)`` of the recipe's generate / D-loss / G-loss
  functions (recompiles after warm-up counted and logged), bf16 autocast on GPUs that have
  it, channels_last, fused Adam, optional CUDA graphs, occlusion on the device, and no host
  sync per step: losses, the non-finite flags and the bad-step counters accumulate in device
  tensors that are read once per record (every ``log_every`` steps).
- safety: atomic checkpoints of everything a resume needs, exact resume (the batch of step s
  does not depend on where the run started; RNG states restored), SIGINT/SIGTERM finish the
  step, save and exit cleanly, and a NaN/Inf loss or gradient stops the run naming the step
  and the last good checkpoint (or, with ``max_bad_steps``, the fused Adam step is skipped on
  the device via its ``found_inf`` input, up to that many times).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fastgan.models import init_weights
from fastgan.train import checkpoint as ckpt
from fastgan.train import distributed
from fastgan.host_memory import keep_freed_memory
from fastgan.train.cpu_convs import use_gemm_for_small_convs
from fastgan.train.config import ConfigError, TrainConfig, merge_for_resume
from fastgan.train.data import BatchStream, Shard, make_loader, open_split, simgan_domains
from fastgan.train.log import MetricsLog, Progress, format_duration
from fastgan.train.recipes import RECIPES
from fastgan.train.validate import evaluate, write_samples

__all__ = ["train", "Trainer", "TrainResult", "TrainingDiverged", "OutputWriteError"]


class OutputWriteError(RuntimeError):
    """The run's outputs could not be written (disk full, read-only folder, ...); the message
    says what and which checkpoint is the last good one."""


class TrainingDiverged(RuntimeError):
    """A loss or gradient became NaN/Inf (more often than ``max_bad_steps`` allows)."""


@dataclass
class TrainResult:
    step: int
    out: Path
    checkpoint: Path | None
    best: Path | None
    stopped: str                       # "steps", "minutes" or "signal"
    validation: dict = field(default_factory=dict)
    sample: Path | None = None
    img_per_s: float = math.nan


def _given_options(cfg: TrainConfig) -> dict:
    """The options that differ from the defaults (what a resumed run was asked to change)."""
    defaults = TrainConfig()
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
            if getattr(cfg, f.name) != getattr(defaults, f.name)}


def train(cfg: TrainConfig, given: dict | None = None) -> TrainResult:
    """Run (or, with ``cfg.resume``, continue) a training; see :class:`Trainer`."""
    return Trainer(cfg, given).run()


class _Compiled:
    """``torch.compile(fn, fullgraph=True)``, falling back to allowing graph breaks (with a
    warning) if the function cannot be traced whole."""

    def __init__(self, fn, cfg: TrainConfig, device: torch.device):
        self.fn, self.name = fn, fn.__name__
        opts = dict(dynamic=False, backend=cfg.compile_backend)
        if cfg.cuda_graphs and device.type == "cuda" and cfg.compile_backend == "inductor":
            opts["mode"] = "reduce-overhead"
        self.opts = opts
        self.compiled = torch.compile(fn, fullgraph=True, **opts)
        self.fullgraph = True

    def __call__(self, *args):
        try:
            return self.compiled(*args)
        except torch._dynamo.exc.Unsupported as e:
            if not self.fullgraph:
                raise
            warnings.warn(f"torch.compile: {self.name} does not trace as one graph ({e}); "
                          "compiling it with graph breaks", stacklevel=2)
            self.fullgraph = False
            self.compiled = torch.compile(self.fn, fullgraph=False, **self.opts)
            return self.compiled(*args)


def _dynamo_counts() -> tuple[int, int]:
    from torch._dynamo.utils import counters
    return int(counters["stats"]["unique_graphs"]), int(sum(counters["graph_break"].values()))


class Trainer:
    def __init__(self, cfg: TrainConfig, given: dict | None = None):
        self.requested = cfg
        self.given = _given_options(cfg) if given is None else dict(given)
        self._signal: int | None = None
        self._old_handlers: dict = {}

    # ------------------------------------------------------------------ setup

    def _setup(self) -> None:
        cfg = self.requested
        # a resumed run may leave --steps / --minutes to its checkpoint's configuration
        (dataclasses.replace(cfg, steps=cfg.steps or 1) if cfg.resume else cfg).validate()
        self.dist = distributed.setup(cfg.device)
        self.device = self.dist.device
        if self.device.type == "cpu":
            keep_freed_memory()  # steps re-allocate the same tensors: no page faults each time
        out = Path(cfg.out)
        self.out, self.last_checkpoint = out, None
        with self._writing(f"the output folder {out}"):
            self.manager = ckpt.CheckpointManager(out / "checkpoints", cfg.keep_last, create=self.dist.main)
        self.dist.barrier()
        state = None
        if cfg.resume:
            path = self.manager.latest()
            if path is None and self.manager.steps():
                raise ConfigError(f"--resume: none of the checkpoints in {self.manager.dir} loads "
                                  "(see the warnings above); nothing was overwritten")
            if path is not None:
                state = ckpt.load_checkpoint(path, map_location=self.device)
                try:
                    cfg = merge_for_resume(state["config"], self.given)
                except ConfigError as e:
                    raise ConfigError(f"--resume from {path}: {e}") from e
                self.resumed_from = path
        elif self.manager.steps():
            step, _ = self.manager.steps()[-1]
            raise ConfigError(f"{out} already holds a run (checkpoint at step {step}): pass --resume "
                              "to continue it, or choose another --out")
        cfg = cfg.resolved(self.device.type)
        # On GPUs compile and channels_last pay; on the CPU (measured in bench/test_bench_train.py)
        # eager NCHW is faster at these model sizes, so they default off there.
        gpu = self.device.type == "cuda"
        cfg.compile = gpu if cfg.compile is None else cfg.compile
        cfg.channels_last = gpu if cfg.channels_last is None else cfg.channels_last
        self.cfg = cfg
        self.state = state

        torch.manual_seed(cfg.seed)
        self.recipe = recipe = RECIPES[cfg.recipe](cfg, self.device)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        nets = recipe.build()
        for name, net in nets.items():
            if name != "parsing":
                init_weights(net, "normal", 0.02)
            net.to(self.device, memory_format=fmt)
            if self.device.type == "cpu" and not cfg.compile:
                use_gemm_for_small_convs(net)   # the innermost U-Net layers: faster as GEMMs
        recipe.nets = nets
        self.trainable = {k: v for k, v in nets.items() if any(p.requires_grad for p in v.parameters())}
        self.rng = torch.Generator(self.device).manual_seed(cfg.seed + 17)
        if hasattr(recipe, "generator_rng"):
            recipe.generator_rng = self.rng

        fused = self.device.type in ("cuda", "cpu")
        self.optimizers, self.schedulers, self.params = {}, {}, {}
        for name, (models, lr) in recipe.optimizer_groups().items():
            params = [p for m in models for p in nets[m].parameters() if p.requires_grad]
            self.params[name] = params
            self.optimizers[name] = torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2),
                                                     fused=fused or None, foreach=None if fused else True)
            self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(self.optimizers[name],
                                                                      _lr_factor(cfg, self._progress))
        self.d_params = [p for m in recipe.discriminators for p in nets[m].parameters()]
        # Fused Adam skips its update on the device when its found_inf is set: with
        # max_bad_steps, from a check of every gradient (identical on all ranks after DDP's
        # all-reduce); otherwise from the loss alone (free), so a NaN loss leaves the weights
        # finite while the run stops at the next record.
        self.skip_bad = cfg.max_bad_steps > 0
        self.found = {}
        for name, opt in self.optimizers.items():
            self.found[name] = torch.zeros((), device=self.device)
            opt.found_inf = self.found[name]
        self._one = torch.ones((), device=self.device)

        # The generator's weight EMA: what validation, samples and inference use.
        self.ema = None
        if cfg.ema > 0:
            self.ema = copy.deepcopy(nets[recipe.generator]).requires_grad_(False)
            self._ema_pairs = (list(self.ema.parameters()), list(nets[recipe.generator].parameters()))

        self.step = 0
        self._elapsed_before = 0.0   # seconds of training before this session (resumed runs)
        self.acc_keys: list[str] | None = None
        self.acc_sum = self.acc_n = None
        self.bad_count = torch.zeros((), dtype=torch.long, device=self.device)
        self.first_bad = torch.full((), -1, dtype=torch.long, device=self.device)
        self.bad_keys = None
        self.best = {"metric": "val_ssim", "value": -math.inf, "step": -1}
        self.last_checkpoint: Path | None = None
        if state is not None:
            self._load_state(state)
            self.last_checkpoint = self.resumed_from

        recipe.train_models = {k: distributed.wrap(v, self.dist) if k in self.trainable else v
                               for k, v in nets.items()}
        self._compile_fns()
        self.amp = self._amp_context()
        self._setup_data()
        if self.dist.main:
            with self._writing(out / "metrics.jsonl"):
                self.log = MetricsLog(out / "metrics.jsonl",
                                      out / "tensorboard" if cfg.tensorboard else None)
                if state is None:
                    self.log.reset()
                else:
                    self.log.truncate_after(self.step)

    def _amp_context(self):
        cfg, dev = self.cfg, self.device
        use = cfg.amp == "bf16" or (cfg.amp == "auto" and dev.type == "cuda" and torch.cuda.is_bf16_supported())
        self.amp_dtype = torch.bfloat16 if use else torch.float32
        if not use:
            return contextlib.nullcontext
        return lambda: torch.autocast(dev.type, dtype=torch.bfloat16)

    def _compile_fns(self) -> None:
        r, cfg = self.recipe, self.cfg
        if cfg.compile:
            self.gen_fn = _Compiled(r.generate, cfg, self.device)
            self.d_fn = _Compiled(r.d_loss, cfg, self.device) if r.discriminators else None
            self.g_fn = _Compiled(r.g_loss, cfg, self.device)
        else:
            self.gen_fn, self.g_fn = r.generate, r.g_loss
            self.d_fn = r.d_loss if r.discriminators else None
        self.graphs_at_warmup: tuple[int, int] | None = None

    def _setup_data(self) -> None:
        cfg, d = self.cfg, self.dist
        if cfg.recipe == "simgan":
            train_ds = simgan_domains(cfg.data, "train", cfg.size, cache=cfg.cache, seed=cfg.seed,
                                      synthetic_n=cfg.synthetic_n)
        else:
            train_ds = open_split(cfg.data, "train", cfg.size, cache=cfg.cache, seed=cfg.seed,
                                  synthetic_n=cfg.synthetic_n)
        if d.enabled:
            train_ds = Shard(train_ds, d.rank, d.world)
        self.train_loader = make_loader(train_ds, cfg.batch, device=self.device, occlusion=cfg.occlusion,
                                        seed=cfg.seed, train=True, workers=cfg.workers,
                                        channels_last=cfg.channels_last)
        self.val_loader = None
        if d.main:
            if cfg.recipe == "simgan":
                val_ds = simgan_domains(cfg.data, "test", cfg.size, cache=cfg.cache, seed=cfg.seed,
                                        synthetic_n=cfg.synthetic_n, limit=cfg.val_images)
            else:
                val_ds = open_split(cfg.data, "test", cfg.size, cache="none" if cfg.cache == "none" else "memory",
                                    synthetic_n=cfg.synthetic_n, limit=cfg.val_images)
            self.val_loader = make_loader(val_ds, min(64, max(cfg.batch, cfg.samples, 1)), device=self.device,
                                          occlusion=cfg.occlusion, seed=0, train=False, workers=0,
                                          channels_last=cfg.channels_last)

    # ------------------------------------------------------------------ state

    def _state(self) -> dict:
        s = {
            "config": self.cfg.to_dict(),
            "recipe": self.cfg.recipe,
            "step": self.step,
            "models": {k: v.state_dict() for k, v in self.recipe.nets.items() if k != "parsing"},
            "elapsed_s": self._elapsed_before + self._session_elapsed(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "rng": ckpt.rng_state(self.device, self.rng),
            "extra": self.recipe.extra_state(),
            "best": dict(self.best),
            "bad_count": self.bad_count,
            "torch": str(torch.__version__),
        }
        if self.ema is not None:   # inference loads it in place of the generator
            s["models"][ckpt.ema_name(self.recipe.generator)] = self.ema.state_dict()
        if self.acc_keys is not None:
            s["accumulators"] = {"keys": list(self.acc_keys), "sum": self.acc_sum, "n": self.acc_n,
                                 "bad_keys": self.bad_keys}
        return s

    def _load_state(self, s: dict) -> None:
        for k in self.recipe.nets:
            if k != "parsing":
                ckpt.load_weights(self.recipe.nets[k], s, k)
        for k, sd in s["optimizers"].items():
            try:
                self.optimizers[k].load_state_dict(sd)
            except (KeyError, ValueError) as e:
                raise ckpt.CheckpointError(f"{s.get('path')}: its {k!r} optimiser state does not fit ({e})") from e
        for k, sd in s["schedulers"].items():
            self.schedulers[k].load_state_dict(sd)
        if self.ema is not None:
            name = ckpt.ema_name(self.recipe.generator)
            if name in s["models"]:
                ckpt.load_weights(self.ema, s, name)
            else:   # a run without EMA resumed with it: start from the current weights
                self.ema.load_state_dict(self.recipe.nets[self.recipe.generator].state_dict())
        self.recipe.load_extra_state(s.get("extra", {}))
        self.step = int(s["step"])
        self._elapsed_before = float(s.get("elapsed_s", 0.0))
        self.best = dict(s.get("best", self.best))
        self.bad_count.copy_(s.get("bad_count", self.bad_count))
        acc = s.get("accumulators")
        if acc is not None:
            self.acc_keys, self.acc_sum, self.acc_n = list(acc["keys"]), acc["sum"], acc["n"]
            self.bad_keys = acc["bad_keys"]
        ckpt.set_rng_state(s["rng"], self.device, self.rng)

    # ------------------------------------------------------------------ one step

    def _requires_grad(self, params, flag: bool) -> None:
        for p in params:
            p.requires_grad_(flag)

    def _optimizer_step(self, name: str, loss: torch.Tensor) -> None:
        found = self.found[name]
        if self.skip_bad:
            found.zero_()
            grads = [p.grad for p in self.params[name] if p.grad is not None]
            if grads:
                torch._amp_foreach_non_finite_check_and_unscale_(grads, found, self._one)
        else:
            found.copy_(~torch.isfinite(loss.detach()))
        self.optimizers[name].step()
        self.optimizers[name].zero_grad(set_to_none=True)
        self.schedulers[name].step()

    def _train_step(self, batch: dict) -> dict:
        r = self.recipe
        if self.cfg.cuda_graphs and self.cfg.compile:
            torch.compiler.cudagraph_mark_step_begin()
        b = r.prepare(batch)
        with self.amp():
            gen = self.gen_fn(b)
        losses = {}
        if self.d_fn is not None:
            fake = r.fake_for_d(b, gen)
            self._requires_grad(self.d_params, True)
            with self.amp():
                d = self.d_fn(b, fake)
            d["loss_d"].backward()
            self._optimizer_step("D", d["loss_d"])
            self._requires_grad(self.d_params, False)   # the G step needs no D weight gradients
            losses.update(d)
        with self.amp():
            g = self.g_fn(b, gen)
        g["loss_g"].backward()
        self._optimizer_step("G", g["loss_g"])
        if self.ema is not None:
            self._update_ema()
        r.after_step(b, gen)
        losses.update(g)
        return losses

    @torch.no_grad()
    def _update_ema(self) -> None:
        # the decay ramps up (the EMA of the first steps would remember the random init)
        decay = min(self.cfg.ema, (1 + self.step) / (10 + self.step))
        torch._foreach_lerp_(self._ema_pairs[0], self._ema_pairs[1], 1 - decay)

    def _progress(self, step: int) -> float:
        """The fraction of the run done: of --steps, or of --minutes, whichever is further."""
        done = 0.0
        if self.cfg.steps:
            done = step / self.cfg.steps
        if self.cfg.minutes and getattr(self, "_start", None) is not None:
            done = max(done, self._session_elapsed() / (self.cfg.minutes * 60))
        return min(done, 1.0)

    def _session_elapsed(self) -> float:
        start = getattr(self, "_start", None)
        return 0.0 if start is None else time.monotonic() - start

    def _accumulate(self, losses: dict) -> None:
        if self.acc_keys is None:
            self.acc_keys = list(losses)
            k = len(self.acc_keys)
            self.acc_sum = torch.zeros(k, dtype=torch.float64, device=self.device)
            self.acc_n = torch.zeros((), dtype=torch.long, device=self.device)
            self.bad_keys = torch.zeros(k, dtype=torch.bool, device=self.device)
        vals = torch.stack([losses[k].detach().float() for k in self.acc_keys])
        finite_each = torch.isfinite(vals)
        finite = finite_each.all()
        bad = ~finite
        if self.skip_bad:   # only then can a gradient be bad while the losses are finite
            for found in self.found.values():
                bad = bad | (found > 0)
        self.acc_sum += torch.where(finite, vals, torch.zeros_like(vals)).double()
        self.acc_n += finite.long()
        self.bad_keys |= ~finite_each
        self.bad_count += bad.long()
        self.first_bad.copy_(torch.where(bad & (self.first_bad < 0), self.step, self.first_bad))

    # ------------------------------------------------------------------ records

    def _read_counters(self) -> tuple[dict, int, int, list[str]]:
        """One host read: interval means, bad-step count (the most of any rank), first bad
        step and the names of the non-finite losses (both of this rank)."""
        keys = self.acc_keys or []
        dev, f64 = self.device, torch.float64
        sums = torch.cat([self.acc_sum, self.acc_n.to(f64).view(1)]) if keys else torch.zeros(1, dtype=f64, device=dev)
        self.dist.all_reduce(sums, "sum")
        bad_max = self.bad_count.to(f64).view(1).clone()
        self.dist.all_reduce(bad_max, "max")
        flags = self.bad_keys.to(f64) if keys else torch.zeros(0, dtype=f64, device=dev)
        vals = torch.cat([sums, bad_max, self.first_bad.to(f64).view(1), flags]).tolist()
        n = vals[len(keys)]
        means = {k: (vals[i] / n if n else math.nan) for i, k in enumerate(keys)}
        bad, first_bad = int(vals[len(keys) + 1]), int(vals[len(keys) + 2])
        bad_names = [k for k, b in zip(keys, vals[len(keys) + 3:]) if b]
        return means, bad, first_bad, bad_names

    def _check_health(self, bad: int, first_bad: int, bad_names: list[str], force: bool = False) -> None:
        if bad <= self.cfg.max_bad_steps and not force:
            return
        what = ", ".join(bad_names) if bad_names else "a gradient"
        if self.last_checkpoint is not None:
            last = f"the last good checkpoint is {self.last_checkpoint} (step {ckpt.step_of(self.last_checkpoint)})"
        else:
            good = self.manager.steps()
            last = (f"the last good checkpoint is {good[-1][1]} (step {good[-1][0]})" if good
                    else "no checkpoint was saved before it")
        allowed = (f"{bad} bad steps exceed --max-bad-steps {self.cfg.max_bad_steps}; "
                   if self.cfg.max_bad_steps else "")
        raise TrainingDiverged(
            f"training stopped: non-finite (NaN/Inf) {what} at step {first_bad + 1}; {allowed}{last}. "
            f"Resume from it with --resume --out {self.out} (e.g. with a lower --lr), or let the run "
            "skip bad steps with --max-bad-steps N.")

    def _record(self, counters: tuple, extra: dict, now: float) -> dict:
        """Write the record of ``counters`` (from ``_read_counters``) and ``extra``; ``now``:
        the end of the last training step (validation and saving do not count for img/s)."""
        means, bad = counters[0], counters[1]
        steps = self.step - self._last_record_step
        dt = max(now - self._last_record_time, 1e-9)
        img_s = steps * self.cfg.batch * self.dist.world / dt
        self._last_record_step, self._last_record_time = self.step, now
        if self.acc_keys is not None:
            self.acc_sum.zero_()
            self.acc_n.zero_()
        rec = {"step": self.step, **means, "img_per_s": img_s,
               "lr": self.optimizers["G"].param_groups[0]["lr"], "elapsed_s": now - self._start}
        if self.skip_bad:
            rec["bad_steps"] = bad
        if self.cfg.compile:
            graphs, breaks = _dynamo_counts()
            if self.graphs_at_warmup is not None:
                rec["recompiles"] = graphs - self.graphs_at_warmup[0]
                if rec["recompiles"] > 0 and not self._warned_recompile and self.dist.main:
                    self._warned_recompile = True
                    self.progress.message(f"warning: torch.compile recompiled {rec['recompiles']} time(s) after "
                                          "warm-up (TORCH_LOGS=recompiles shows why)")
            rec["graph_breaks"] = breaks
        rec.update(extra)
        if self.dist.main:
            with self._writing(self.out / "metrics.jsonl"):
                self.log.write(rec)
            self.progress.update(self.step, self.start_step, img_s, steps / dt, means)
        self.last_img_s = img_s
        return rec

    # ------------------------------------------------------------------ saving

    @contextlib.contextmanager
    def _inference_weights(self):
        """The EMA generator in the recipe's bare modules for the block (if there is one)."""
        name = self.recipe.generator
        trained = self.recipe.nets[name]
        if self.ema is not None:
            self.recipe.nets[name] = self.ema
        try:
            yield
        finally:
            self.recipe.nets[name] = trained

    def _validate(self) -> dict:
        if not self.dist.main or self.val_loader is None:
            return {}
        with self._inference_weights():
            return self._validate_now()

    def _validate_now(self) -> dict:
        metrics = evaluate(self.recipe, self.val_loader, self.cfg.val_images)
        if self.cfg.samples > 0:
            if self._sample_batch is None:
                self.val_loader.set_epoch(0)
                self._sample_batch = next(iter(self.val_loader))
            path = self.out / "samples" / f"step-{self.step:08d}.png"
            with self._writing(path):
                self.last_sample = write_samples(self.recipe, self._sample_batch, path, self.cfg.samples)
        self.last_validation = metrics
        return metrics

    def _improved(self, metrics: dict) -> bool:
        """Whether this validation beat the best so far (the same answer on every rank)."""
        better = torch.tensor(float(metrics.get("val_ssim", -math.inf) > self.best["value"]), device=self.device)
        return bool(self.dist.all_reduce(better, "max"))

    def _save(self, metrics: dict | None = None, improved: bool = False) -> Path | None:
        path = None
        if self.dist.main:
            if improved:
                self.best = {"metric": "val_ssim", "value": metrics["val_ssim"], "step": self.step}
            with self._writing(f"the checkpoint of step {self.step} in {self.manager.dir}"):
                path = self.manager.save(self._state(), self.step)
                if improved:
                    self.manager.mark_best(path)
            self.last_checkpoint = path
        self.dist.barrier()
        return path

    @contextlib.contextmanager
    def _writing(self, what):
        """An OSError while writing ``what`` stops the run with one line naming it and the
        last good checkpoint (checkpoints are atomic: a failed write leaves the last one whole)."""
        try:
            yield
        except OSError as e:
            why = e.strerror or str(e) or type(e).__name__
            last = (f"the last checkpoint {self.last_checkpoint} still loads; free space or fix the "
                    f"folder, then continue with --resume --out {self.out}" if self.last_checkpoint
                    else "no checkpoint was written")
            raise OutputWriteError(f"could not write {what}: {why}; {last}") from e

    # ------------------------------------------------------------------ signals

    def _on_signal(self, signum, frame) -> None:
        if self._signal is not None:   # a second signal: stop now (checkpoints are atomic)
            raise KeyboardInterrupt
        self._signal = signum

    def _install_signals(self) -> None:
        import threading
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()

    # ------------------------------------------------------------------ the loop

    def run(self) -> TrainResult:
        self._install_signals()
        try:
            self._setup()
            return self._loop()
        finally:
            self._restore_signals()
            if getattr(self, "log", None) is not None:
                self.log.close()
            if getattr(self, "progress", None) is not None:
                self.progress.close()
            if getattr(self, "dist", None) is not None:
                distributed.cleanup(self.dist)

    def _describe(self) -> str:
        from fastgan.models import count_parameters
        cfg = self.cfg
        sizes = ", ".join(f"{k} {count_parameters(v) / 1e6:.2f}M" for k, v in self.trainable.items())
        mode = (f"compiled ({cfg.compile_backend}{', CUDA graphs' if cfg.cuda_graphs else ''})"
                if cfg.compile else "eager")
        world = f" x {self.dist.world} processes" if self.dist.enabled else ""
        start = f"resuming at step {self.step}" if self.state is not None else "new run"
        return (f"fastgan train {cfg.recipe}: {start}; {cfg.size}px, batch {cfg.batch}{world}, "
                f"occlusion {cfg.occlusion}, {sizes}; {self.device}, "
                f"{str(self.amp_dtype).replace('torch.', '')}, {mode}; out {self.out}")

    def _loop(self) -> TrainResult:
        cfg, d = self.cfg, self.dist
        self.progress = Progress(cfg.steps, cfg.minutes * 60 if cfg.minutes else None,
                                 enabled=cfg.progress and d.main)
        self._warned_recompile = False
        self._sample_batch = None
        self.last_sample = None
        self.last_validation: dict = {}
        self.last_img_s = math.nan
        if d.main:
            self.progress.message(self._describe())
        for net in self.recipe.nets.values():
            net.train()
        if "parsing" in self.recipe.nets:
            self.recipe.nets["parsing"].train()   # it keeps its parser in eval mode itself
        self._requires_grad(self.d_params, False)
        self.start_step = self.step
        self._start = time.monotonic()
        self._last_record_time, self._last_record_step = self._start, self.step
        deadline = self._start + cfg.minutes * 60 if cfg.minutes else math.inf
        stopped = "steps"
        stream = iter(BatchStream(self.train_loader, self.step))
        while cfg.steps is None or self.step < cfg.steps:
            if not d.enabled and self._signal is not None:
                stopped = "signal"
                break
            try:
                batch = next(stream)
            except RuntimeError:
                if self._signal is not None:   # a data worker died of the same Ctrl-C
                    stopped = "signal"
                    break
                raise
            try:
                losses = self._train_step(batch)
            except ValueError as e:   # a fused op saw NaN/Inf (eager CPU checks its inputs)
                if "NaN or Inf" not in str(e):
                    raise
                means, bad, first_bad, names = self._read_counters()
                if first_bad < 0:
                    first_bad, names = self.step, [f"value ({e})"]
                self._check_health(bad, first_bad, names, force=True)
            self._accumulate(losses)
            self.step += 1
            if cfg.compile and self.graphs_at_warmup is None and self.step - self.start_step >= 2:
                self.graphs_at_warmup = _dynamo_counts()
            last = cfg.steps is not None and self.step >= cfg.steps
            now = time.monotonic()
            time_up = now >= deadline
            at_log = self.step % cfg.log_every == 0
            at_val = self.step % cfg.val_every == 0
            at_save = self.step % cfg.save_every == 0
            if d.enabled and at_log:   # every rank decides the same: stop flags all-reduced
                flags = torch.tensor([float(time_up), float(self._signal is not None)], device=self.device)
                d.all_reduce(flags, "max")
                time_up, sig = bool(flags[0]), bool(flags[1])
                if sig and self._signal is None:
                    self._signal = signal.SIGTERM
            elif d.enabled:
                time_up = False
            if time_up:
                stopped, last = "minutes", True
            if d.enabled and self._signal is not None and at_log:
                stopped = "signal"
                break
            if not (at_log or at_val or at_save or last):
                continue
            counters = self._read_counters()
            self._check_health(*counters[1:])   # never validate or save a diverged model
            metrics = self._validate() if at_val or last else {}
            self._record(counters, metrics, now)
            # a better validation is saved even between save steps, so best.pt is a real checkpoint
            improved = self._improved(metrics)
            if at_save or last or improved:
                self._save(metrics, improved)
            self._last_record_time = time.monotonic()   # the next interval starts after this one's work
            if last:
                break
        if stopped == "signal":
            means, bad, first_bad, bad_names = self._read_counters()
            self._check_health(bad, first_bad, bad_names)
            if self.last_checkpoint is None or ckpt.step_of(self.last_checkpoint) != self.step:
                self._save()
            if d.main:
                name = signal.Signals(self._signal).name if self._signal else "a signal"
                self.progress.message(f"stopped by {name} at step {self.step}: saved {self.last_checkpoint}; "
                                      f"continue with --resume --out {self.out}")
        elif d.main:
            v = self.last_validation
            summary = ", ".join(f"{k.replace('val_', '')} {v[k]:.4f}" for k in
                                ("val_ssim", "val_psnr", "val_ssim_occluded", "val_psnr_occluded") if k in v)
            took = format_duration(time.monotonic() - self._start)
            self.progress.message(f"done: step {self.step} ({stopped}) in {took}; held-out {summary}; "
                                  f"checkpoint {self.last_checkpoint}")
        best = self.manager.best_path if self.manager.best_path.exists() else None
        return TrainResult(self.step, self.out, self.last_checkpoint, best, stopped,
                           dict(self.last_validation), self.last_sample, self.last_img_s)


def _lr_factor(cfg: TrainConfig, progress):
    """pix2pix's schedule: constant, then (with lr_decay linear) down to 0 at the end of the
    run, ``progress(step)`` being the fraction done (of --steps or --minutes)."""
    if cfg.lr_decay != "linear":
        return _constant

    def linear(step: int) -> float:
        done = progress(step)
        if done < cfg.decay_start:
            return 1.0
        return max(0.0, (1 - done) / max(1e-9, 1 - cfg.decay_start))

    return linear


def _constant(step: int) -> float:
    return 1.0
