"""One optimisation step each for the GAN and the VAE, plus the EMA update. Pure PyTorch, no Ray, no IO."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genart.models.losses import d_loss, g_loss, vae_loss


@dataclass
class GanState:
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: str
    latent_dim: int
    num_classes: int
    # DiffAugment T: D sees T(x) wherever it sees x, real and fake, in both steps (None = off)
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None

    def see(self, x: torch.Tensor) -> torch.Tensor:
        """What D is shown for the images x: T(x), or x itself when augmentation is off."""
        return x if self.augment is None else self.augment(x)


def _fake_labels(y: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    # sample classes uniformly for G so every class is trained equally, whatever the data's balance
    return torch.randint(0, num_classes, y.shape, device=y.device) if num_classes else None


def discriminator_step(
    s: GanState, x: torch.Tensor, y: torch.Tensor | None
) -> tuple[float, torch.Tensor, torch.Tensor | None]:
    z = torch.randn(len(x), s.latent_dim, device=x.device)
    y_fake = _fake_labels(y, s.num_classes) if y is not None else None
    with torch.no_grad():
        fake = s.G(z, y_fake)
    # one D forward over real and fake together (no BN in D, so batches may be concatenated; DiffAugment
    # draws every parameter per image, so augmenting the concatenation = augmenting each half)
    logits = s.D(s.see(torch.cat([x, fake])), torch.cat([y, y_fake]) if y_fake is not None else None)
    loss = d_loss(logits[: len(x)], logits[len(x) :], s.loss)
    s.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    s.opt_d.step()
    return loss.item(), z, y_fake


def generator_step(s: GanState, z: torch.Tensor, y_fake: torch.Tensor | None) -> float:
    loss = g_loss(s.D(s.see(s.G(z, y_fake)), y_fake), s.loss)
    s.opt_g.zero_grad(set_to_none=True)
    loss.backward()  # also fills D's grads; they are cleared at D's next zero_grad
    s.opt_g.step()
    return loss.item()


def gan_step(s: GanState, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
    """D step on a real batch and a fresh fake batch, then a G step on new latents of the same classes."""
    loss_d, z, y_fake = discriminator_step(s, x, y)
    loss_g = generator_step(s, torch.randn_like(z), y_fake)
    return {"loss_d": loss_d, "loss_g": loss_g}


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model; buffers (BN statistics) are copied as they are."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


STANDING_BATCHES, STANDING_BATCH_SIZE = 16, 64


@torch.no_grad()
def standing_stats(
    G: nn.Module,
    latent_dim: int,
    num_classes: int,
    device,
    seed: int = 0,
    batches: int = STANDING_BATCHES,
    batch_size: int = STANDING_BATCH_SIZE,
) -> None:
    """Recompute G's BatchNorm running statistics from its own forward passes ("standing statistics", Brock
    et al. 2019, BigGAN, appendix C.1), then leave G in eval mode.

    The EMA generator's weights average G's over the last ~1/(1 - decay) steps, but BatchNorm statistics
    cannot be averaged that way: copied from G they describe other weights, and in eval mode the EMA
    generator then draws shifted colours and washed-out shapes (measured on a 64x64 colour collection: mean
    RGB (174, 187, 199) from the EMA generator against (216, 197, 179) from G and (210, 197, 181) in the
    data). Here every BatchNorm layer averages its batch statistics over `batches` x `batch_size` fresh
    latents (classes cycled evenly for a conditional G), drawn from a private generator seeded by `seed`,
    so the result is deterministic and the global torch RNG is untouched. No-op for a G without BatchNorm.
    """
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
    G.train()
    gen = torch.Generator().manual_seed(seed)
    for b in range(batches):
        z = torch.randn(batch_size, latent_dim, generator=gen).to(device)
        y = None
        if num_classes:
            y = (torch.arange(batch_size) + b * batch_size).remainder(num_classes).to(device)
        G(z, y)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    G.eval()


def vae_step(
    vae: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor | None, beta: float
) -> dict[str, float]:
    recon, mu, logvar = vae(x, y)
    loss, rec, kl = vae_loss(recon, x, mu, logvar, beta)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), "recon": rec.item(), "kl": kl.item()}
