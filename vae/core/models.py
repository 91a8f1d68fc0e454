"""Encoder, Decoder, and the two models built from them: VAE and AE.

The AE uses the very same Encoder and Decoder classes; the only difference is that its code
is deterministic (z = mu) and it has no log-variance head, so an AE/VAE comparison is fair.
The decoder outputs Bernoulli logits; `decode` turns them into pixel probabilities.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vae.core.config import ModelConfig


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """x (N, C, H, W) -> (mu (N, D), logvar (N, D) or None)."""

    def __init__(self, config: ModelConfig, with_logvar: bool) -> None:
        super().__init__()
        c, h, w = config.image_shape
        if config.arch == "mlp":
            self.body: nn.Module = nn.Sequential(nn.Flatten(), _mlp([c * h * w, *config.hidden]))
            features = config.hidden[-1]
        else:
            layers: list[nn.Module] = []
            in_ch = c
            for out_ch in config.channels:
                layers += [nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1), nn.ReLU()]
                in_ch = out_ch
            step = 2 ** len(config.channels)
            layers += [nn.Flatten(), nn.Linear(in_ch * (h // step) * (w // step), config.hidden[-1]), nn.ReLU()]
            self.body = nn.Sequential(*layers)
            features = config.hidden[-1]
        self.mu = nn.Linear(features, config.latent_dim)
        self.logvar = nn.Linear(features, config.latent_dim) if with_logvar else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.body(x)
        return self.mu(h), (self.logvar(h) if self.logvar is not None else None)


class Decoder(nn.Module):
    """z (N, D) -> Bernoulli logits (N, C, H, W)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, h, w = config.image_shape
        self.image_shape = (c, h, w)
        if config.arch == "mlp":
            sizes = [config.latent_dim, *reversed(config.hidden)]
            self.body: nn.Module = nn.Sequential(_mlp(sizes), nn.Linear(sizes[-1], c * h * w))
        else:
            step = 2 ** len(config.channels)
            chans = list(reversed(config.channels))
            layers: list[nn.Module] = [
                nn.Linear(config.latent_dim, config.hidden[-1]),
                nn.ReLU(),
                nn.Linear(config.hidden[-1], chans[0] * (h // step) * (w // step)),
                nn.ReLU(),
                nn.Unflatten(1, (chans[0], h // step, w // step)),
            ]
            for i, in_ch in enumerate(chans):
                out_ch = chans[i + 1] if i + 1 < len(chans) else c
                layers.append(nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1))
                if i + 1 < len(chans):
                    layers.append(nn.ReLU())
            self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).reshape(z.shape[0], *self.image_shape)


class LatentModel(nn.Module):
    """Shared shape of VAE and AE: `encode`, `decode`, `forward`."""

    stochastic: bool = True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, with_logvar=self.stochastic)
        self.decoder = Decoder(config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (N, C, H, W) in [0, 1] -> mu (N, D), logvar (N, D) (None for the AE)."""
        return self.encoder(x)

    def sample_z(
        self, mu: torch.Tensor, logvar: torch.Tensor | None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reparameterization: z = mu + sigma * eps with eps ~ N(0, I); the AE returns mu."""
        if logvar is None:
            return mu
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, D) -> Bernoulli logits (N, C, H, W)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, D) -> pixel probabilities (N, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Returns (logits, mu, logvar, z); z is sampled for the VAE and equals mu for the AE."""
        mu, logvar = self.encode(x)
        z = self.sample_z(mu, logvar, generator)
        return self.decode_logits(z), mu, logvar, z


class VAE(LatentModel):
    stochastic = True


class AE(LatentModel):
    stochastic = False


def build_model(config: ModelConfig, seed: int | None = None) -> LatentModel:
    """A fresh model; with `seed`, its initial weights are the same on every call."""
    config.validate()
    cls = VAE if config.kind == "vae" else AE
    if seed is None:
        return cls(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(config)


def conv_channels(image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The conv layers' channels for an image size. Below 32 px: (32, 64) where the sides halve
    twice (MNIST's 28 -> 7), else (32,). From 32 px (shapes, photos, grey or colour): halve until
    about 4 x 4 is left, as the beta-VAE papers' encoder for 64 x 64 dSprites and CelebA does
    (Higgins et al. 2017, Burgess et al. 2018: 32, 32, 64, 64 channels, 4 x 4 kernels, stride 2),
    so the flattened features stay ~1,000 whatever the size (a 64 x 64 image at depth 2 would
    hand 16,384 of them to the first linear layer)."""
    _, h, w = image_shape
    if min(h, w) >= 32:
        depth = 0
        while depth < 4 and h % 2 ** (depth + 1) == 0 and w % 2 ** (depth + 1) == 0 and min(h, w) // 2 ** (depth + 1) >= 4:
            depth += 1
        if depth >= 3:
            return (32, 32, 64, 64)[-depth:]
    return (32, 64) if h % 4 == 0 and w % 4 == 0 else (32,)


def default_model_config(image_shape: tuple[int, int, int], kind: str = "vae", arch: str = "mlp", latent_dim: int = 2) -> ModelConfig:
    """Sensible widths for an image size: 256 hidden for 8x8 digits, 400 for 28x28 (Kingma & Welling);
    conv channels from `conv_channels`. Grey or colour alike: the channels only change the first
    and the last layer."""
    pixels = math.prod(image_shape)
    hidden = (256,) if pixels <= 256 else (400,)
    return ModelConfig(kind=kind, arch=arch, image_shape=image_shape, latent_dim=latent_dim, hidden=hidden, channels=conv_channels(image_shape))
