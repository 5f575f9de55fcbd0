"""The discrete Schrödinger bridge of UNSB (Kim et al., ICLR 2024): its times, its update, its walk.

A bridge generator does not translate in one pass: it predicts the target image ``X̂₁`` from a
point ``X_t`` of a stochastic path that starts at the input, and the path moves towards each
prediction with a little Gaussian noise::

    X_{k+1} = (1 - a)·X_k + a·X̂₁ + sqrt(τ·δ·(1 - a))·ε,   δ = t_{k+1} - t_k,  a = δ / (1 - t_k)

after ``k`` predictions the last one is the translation. Training (the ``unsb`` task) walks the
same path to a random step and teaches the generator the prediction there; the Translator and the
ONNX runner walk it from the input. This module is the one place that says how, so that the three
cannot drift apart.

Training needs the noise (it is what makes the path a bridge, and the generator learns to predict
from noisy points); translating does not. By default a translation walks the path's mean
(``path_noise`` 0): the generator passes the noise of its input through to its prediction, so
the paper's sampling (``path_noise`` 1) leaves a fine grain that costs every look of the suite
(22 of 22 runs) and the painting pair's KID (benchmarks/README.md).

A bridge may also say how many of its predictions a translation walks unless told
(``sample_steps``, else all): after a short training each later prediction moves further
along the look, past its size, so UNSB's ``quality`` recipe walks three of its five
(benchmarks/README.md).

A generator is a bridge when it carries a ``bridge`` attribute (a ``Bridge``) and is called as
``net(x, time_index, z)``: ``time_index`` an int64 tensor (N,) of step numbers 0..steps-1, ``z``
a float (N, noise_dim) standard normal vector.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from i2i.core.device import unwrap
from i2i.core.errors import InvalidArgumentError

# step(x_t, time_index, z) -> the predicted endpoint; noise(shape) -> standard normal samples.
Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Noise = Callable[[Sequence[int]], torch.Tensor]

# The share of the path's noise a translation walks unless told: none (the module docstring).
PATH_NOISE = 0.0


def bridge_times(steps: int) -> list[float]:
    """The ``steps + 1`` times ``0 = t_0 < t_1 < ... < t_steps = 1`` of the bridge.

    The increments are harmonic (1, 1/2, 1/3, ...), their partial sums normalised to [0, 1]
    and squeezed into [0.5, 1], with 0 in front: the first prediction jumps half way, later ones
    refine (steps 5: 0, 0.50, 0.74, 0.86, 0.94, 1).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidArgumentError(f"a bridge needs a whole number of steps >= 1, got {steps!r}")
    if steps == 1:
        return [0.0, 1.0]  # one prediction, from the input straight to the end
    partial = [0.0]
    for i in range(1, steps):
        partial.append(partial[-1] + 1.0 / i)
    return [0.0] + [0.5 + 0.5 * p / partial[-1] for p in partial]


def bridge_update(
    x: torch.Tensor,
    predicted: torch.Tensor,
    t_from: float,
    t_to: float,
    tau: float,
    noise: torch.Tensor,
) -> torch.Tensor:
    """One move of the path from time ``t_from`` to ``t_to`` towards ``predicted`` (X̂₁).

    The mean is the Brownian bridge's from ``x`` at ``t_from`` to ``predicted`` at 1; the
    variance is its variance times the entropy weight ``tau``.
    """
    delta = t_to - t_from
    a = delta / (1.0 - t_from)
    return (1.0 - a) * x + a * predicted + (tau * delta * (1.0 - a)) ** 0.5 * noise


@dataclass(frozen=True)
class Bridge:
    """What a bridge generator declares as ``net.bridge``: its steps, entropy and noise width,
    and how many predictions a translation walks unless told (``sample_steps``, None: all)."""

    steps: int = 5
    tau: float = 0.01
    noise_dim: int = 256
    sample_steps: int | None = None

    def __post_init__(self) -> None:
        bridge_times(self.steps)  # checks steps
        if self.sample_steps is not None:
            self.check_steps(self.sample_steps, "sample_steps")
        number = isinstance(self.tau, int | float) and not isinstance(self.tau, bool)
        if not number or not self.tau >= 0:
            raise InvalidArgumentError(f"tau must be a number >= 0, got {self.tau!r}")
        if isinstance(self.noise_dim, bool) or not isinstance(self.noise_dim, int):
            raise InvalidArgumentError(f"noise_dim must be a whole number, got {self.noise_dim!r}")

    @property
    def times(self) -> list[float]:
        return bridge_times(self.steps)

    def as_dict(self) -> dict[str, Any]:
        """The fields, without ``sample_steps`` when unset (as configs written before it)."""
        values = asdict(self)
        if self.sample_steps is None:
            del values["sample_steps"]
        return values

    @classmethod
    def from_dict(cls, values: Any) -> Bridge:
        """The bridge a config describes (``as_dict``'s keys), or a one-line error."""
        known = {"steps", "tau", "noise_dim", "sample_steps"}
        if not isinstance(values, dict) or not set(values) <= known:
            raise InvalidArgumentError(
                f"a bridge is described by {', '.join(sorted(known))}; got {values!r}"
            )
        return cls(**values)

    def check_steps(self, steps: int | None, name: str = "steps") -> int:
        """``steps`` predictions (1..T); when None, the bridge's ``sample_steps``, else all T."""
        if steps is None:
            return self.steps if self.sample_steps is None else self.sample_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.steps:
            raise InvalidArgumentError(
                f"{name} must be a whole number from 1 to {self.steps} (the model's bridge has "
                f"{self.steps} steps), got {steps!r}"
            )
        return steps

    def walk(
        self, step: Step, x: torch.Tensor, index: int, noise: Noise, path_noise: float = 1.0
    ) -> torch.Tensor:
        """``X`` at step ``index`` of the path from ``X_0 = x``: ``index`` predictions and moves.

        Per step the noise is drawn as ``z`` (N, noise_dim), then ``ε`` (x's shape): the order
        that training and inference share, so that one seed gives one path. ``ε`` is drawn even
        when ``path_noise`` (the share of the bridge's variance walked) is 0, so that a seed
        gives the generator the same ``z`` whatever the share.
        """
        times, tau = self.times, self.tau * check_path_noise(path_noise)
        for k in range(index):
            predicted = step(x, self.time_index(x, k), noise((x.shape[0], self.noise_dim)))
            eps = noise(tuple(x.shape))
            x = bridge_update(x, predicted.to(x.dtype), times[k], times[k + 1], tau, eps)
        return x

    def sample(
        self,
        step: Step,
        x: torch.Tensor,
        steps: int | None = None,
        noise: Noise | None = None,
        path_noise: float = PATH_NOISE,
    ) -> torch.Tensor:
        """The translation of ``x`` after ``steps`` predictions (default: ``sample_steps``, else
        all): the last one.

        ``noise`` defaults to ``seeded_noise(0, x.device)``; ``path_noise`` 0 walks the path's
        mean, 1 samples it as the paper does (the module's docstring says why 0 is the default).
        """
        steps = self.check_steps(steps)
        noise = noise or seeded_noise(0, x.device)
        x_t = self.walk(step, x, steps - 1, noise, path_noise)
        return step(x_t, self.time_index(x, steps - 1), noise((x.shape[0], self.noise_dim)))

    @staticmethod
    def time_index(x: torch.Tensor, k: int) -> torch.Tensor:
        return torch.full((x.shape[0],), k, dtype=torch.int64, device=x.device)


def bridge_of(net: Any) -> Bridge | None:
    """The ``Bridge`` a generator declares, or None for a one-pass generator."""
    bridge = getattr(unwrap(net), "bridge", None) if net is not None else None
    return bridge if isinstance(bridge, Bridge) else None


def check_seed(seed: int) -> int:
    """A noise seed torch's generator accepts, checked before any work starts."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InvalidArgumentError(f"--seed must be a whole number, got {seed!r}")
    if not 0 <= int(seed) < 2**63:
        raise InvalidArgumentError(f"--seed must be from 0 to 2**63 - 1, got {seed}")
    return int(seed)


def check_path_noise(path_noise: float) -> float:
    """A share of the bridge's path noise: a number from 0 (the path's mean) to 1 (the paper's)."""
    number = isinstance(path_noise, numbers.Real) and not isinstance(path_noise, bool)
    if not number or not 0 <= path_noise <= 1:
        raise InvalidArgumentError(
            f"--path-noise must be a number from 0 (the path's mean) to 1 (the paper's "
            f"sampling), got {path_noise!r}"
        )
    return float(path_noise)


def seeded_noise(seed: int, device: torch.device | str) -> Noise:
    """Standard normal noise from ``seed``, the same for every image of a batch.

    Drawn on the CPU for one image and repeated over the batch, so an image translates the
    same alone or in a batch, on any device and with either backend.
    """
    generator = torch.Generator().manual_seed(check_seed(seed))

    def draw(shape: Sequence[int]) -> torch.Tensor:
        one = torch.randn((1, *shape[1:]), generator=generator)
        return one.to(device).expand(*shape)

    return draw


class BridgeRunner:
    """A bridge generator behind a one-argument call: ``runner(x)`` walks ``steps`` predictions
    with noise from ``seed`` (``path_noise`` of the path's). The Translator runs any model
    through it, torch or ONNX."""

    def __init__(
        self,
        net: Any,
        bridge: Bridge,
        steps: int | None = None,
        seed: int = 0,
        path_noise: float = PATH_NOISE,
    ):
        self.net, self.bridge = net, bridge
        self.steps, self.seed = bridge.check_steps(steps), seed
        self.path_noise = check_path_noise(path_noise)
        plain = unwrap(net)
        self.size_multiple = getattr(plain, "size_multiple", 1)
        self.min_size = getattr(plain, "min_size", 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        noise = seeded_noise(self.seed, x.device)
        return self.bridge.sample(self.net, x, self.steps, noise, self.path_noise)
