import pytest
import torch

from genart.models.gan import Discriminator, Generator
from genart.models.layers import SelfAttention
from genart.models.losses import d_loss, g_loss, vae_loss
from genart.models.vae import VAE, Decoder
from genart.training.steps import ema_update


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_gan_shapes_for_every_size(size, channels):
    g = Generator(size, channels, latent_dim=8, num_classes=3, g_width=8, attention=True)
    d = Discriminator(size, channels, num_classes=3, d_width=8, attention=True, spectral_norm=True)
    z, y = torch.randn(2, 8), torch.tensor([0, 2])
    img = g(z, y)
    assert img.shape == (2, channels, size, size)
    assert float(img.min()) >= -1 and float(img.max()) <= 1
    assert d(img, y).shape == (2,)
    assert any(isinstance(m, SelfAttention) for m in g.modules())
    assert any(isinstance(m, SelfAttention) for m in d.modules())


def test_conditional_generator_needs_classes():
    g = Generator(32, 1, latent_dim=8, num_classes=10, g_width=8)
    with pytest.raises(ValueError, match="pass class_ids"):
        g(torch.randn(1, 8))


def test_self_attention_starts_as_identity():
    attn = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(attn(x), x)  # gamma = 0 at init


def test_projection_discriminator_uses_the_class():
    torch.manual_seed(0)
    d = Discriminator(32, 1, num_classes=10, d_width=8, spectral_norm=False)
    x = torch.randn(1, 1, 32, 32)
    assert float(d(x, torch.tensor([0]))) != float(d(x, torch.tensor([1])))


def test_losses_match_their_formulas():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    expected_ns_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert torch.allclose(d_loss(real, fake, "nonsaturating"), expected_ns_d)
    assert torch.allclose(g_loss(fake, "nonsaturating"), -torch.log(sig(fake)).mean())
    assert torch.allclose(d_loss(real, fake, "hinge"), torch.tensor((0 + 2) / 2 + (1.5 + 0) / 2))
    assert torch.allclose(g_loss(fake, "hinge"), torch.tensor(1.25))


def test_vae_loss_is_recon_plus_beta_kl():
    x = torch.zeros(2, 1, 4, 4)
    recon = torch.full_like(x, 0.5)
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)
    total, rec, kl = vae_loss(recon, x, mu, logvar, beta=2.0)
    assert rec.item() == pytest.approx(16 * 0.25)
    assert kl.item() == pytest.approx(1.5)  # 0.5 * sum(mu^2) over 3 dims
    assert total.item() == pytest.approx(4.0 + 3.0)


def test_vae_and_decoder_shapes():
    vae = VAE(64, 3, latent_dim=4, num_classes=2, width=8)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.tensor([0, 1])
    recon, mu, logvar = vae(x, y)
    assert recon.shape == x.shape and mu.shape == (2, 4) and logvar.shape == (2, 4)
    assert isinstance(vae.decoder, Decoder)


def test_ema_update():
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        a.weight.fill_(0.0)
        b.weight.fill_(1.0)
    ema_update(a, b, decay=0.9)
    assert torch.allclose(a.weight, torch.full_like(a.weight, 0.1))


@pytest.mark.parametrize("attention", [False, True])
def test_gan_at_256_forward_and_backward(attention):
    """image_size 256: six up/down-samplings; attention sits at 64x64 (not 128x128, 1 GB per image)."""
    from genart.models.layers import attention_side, num_resamples

    assert num_resamples(256) == 6 and attention_side(256) == 64 and attention_side(32) == 16
    torch.manual_seed(0)
    g = Generator(256, 4, latent_dim=8, num_classes=2, g_width=8, attention=attention)
    d = Discriminator(256, 4, num_classes=2, d_width=8, attention=attention, spectral_norm=True)
    seen = []
    for m in [*g.modules(), *d.modules()]:
        if isinstance(m, SelfAttention):
            m.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape[2:])))
    z, y = torch.randn(2, 8), torch.tensor([0, 1])
    img = g(z, y)
    assert img.shape == (2, 4, 256, 256)
    logits = d(img, y)
    assert logits.shape == (2,)
    logits.sum().backward()
    assert all(p.grad is not None for p in [*g.parameters(), *d.parameters()])
    assert seen == ([(64, 64), (64, 64)] if attention else [])  # once in G, once in D


def test_vae_at_256_forward_and_backward():
    torch.manual_seed(0)
    vae = VAE(256, 4, latent_dim=4, num_classes=2, width=8)
    x, y = torch.rand(2, 4, 256, 256) * 2 - 1, torch.tensor([0, 1])
    recon, mu, logvar = vae(x, y)
    assert recon.shape == x.shape
    vae_loss(recon, x, mu, logvar, 1.0)[0].backward()
    assert all(p.grad is not None for p in vae.parameters())


@pytest.mark.parametrize("size", [4, 24, 96])
def test_sizes_other_than_4_times_a_power_of_two_are_refused(size):
    from genart.models.layers import num_resamples

    with pytest.raises(ValueError, match=r"image_size must be 4 \* 2\^n \(32, 64, 128, 256\), got"):
        num_resamples(size)
