"""The mean-shift term: what it asks of a generator, and what it leaves alone."""

from __future__ import annotations

import torch

import i2i
from i2i.kit.shift import GRID


def _sets(n: int = 8, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unpaired A and B images whose sets differ by a darker top half (a graduated sky)."""
    torch.manual_seed(0)
    a, b = torch.rand(2, n, 3, size, size) * 1.2 - 0.6
    sky = torch.zeros(1, 3, size, size)
    sky[:, :, : size // 2] = -0.3
    return a, b + sky, sky


def test_its_gradient_moves_every_image_alike_not_toward_the_average_picture():
    a, b, _ = _sets()
    shift = i2i.MeanShift(3, torch.device("cpu"), (8, 8))
    shift.observe(a, b)
    fake = a.clone().requires_grad_()  # a generator that still copies its input
    shift.loss(a, fake, "A").backward()
    grads = fake.grad
    assert grads.abs().amax() > 0
    torch.testing.assert_close(grads, grads[:1].expand_as(grads))  # the same for every image
    top, bottom = grads[0, :, :16].mean(), grads[0, :, 16:].mean()
    assert top > 5 * bottom.abs()  # descent darkens the sky, and little else


def test_it_asks_for_nothing_before_both_sets_are_seen_or_when_the_shift_is_right():
    a, b, _ = _sets()
    shift = i2i.MeanShift(3, torch.device("cpu"), (8, 8))
    assert shift.loss(a, a, "A") == 0  # no set seen: no shift asked for
    shift.observe(a, b)
    right = torch.nn.functional.interpolate(shift.target()[None], size=32)  # cell by cell
    for _ in range(400):  # the average forgets the copying steps it began with
        loss = shift.loss(a, a + right, "A")
    assert loss < 1e-6
    assert shift.loss(b, b - right, "B") > 0  # the other way's average has not moved yet


def test_it_asks_only_for_the_shift_the_sets_can_tell():
    """Two sets differ by chance in every cell; only the darker sky is a shift they show. A set
    seen twice over tells its mean no better than once."""
    a, b, _ = _sets()
    shift = i2i.MeanShift(3, torch.device("cpu"), (8, 8))
    shift.observe(a, b)
    cells = shift.cells
    gap = cells(b).mean(0) - cells(a).mean(0)
    told = shift.target()
    half = GRID // 2
    torch.testing.assert_close(told[:, :half], gap[:, :half], rtol=0.02, atol=0)  # the sky
    chance, kept = gap[:, half:].abs().mean(), told[:, half:].abs().mean()
    assert chance > 0.01 and kept < chance / 1.5  # the rest: asked, in part, to stay as it is
    shift.observe(a, b)
    torch.testing.assert_close(shift.target(), told)  # no surer for being seen again
    more = i2i.MeanShift(3, torch.device("cpu"), (16, 16))
    more.observe(a, b)
    more.observe(a.flip(0), b.flip(0))  # as if 16 images had these statistics
    assert more.target()[:, half:].abs().mean() > kept  # surer: more of the gap is asked for


def test_a_generator_trained_on_the_term_alone_learns_the_sets_shift():
    """Per-pixel offsets, trained on fresh unpaired batches: the darker sky is learned, cell by
    cell, from sets whose images differ everywhere."""
    offset = torch.zeros(1, 3, 32, 32, requires_grad=True)
    optimizer = torch.optim.SGD([offset], lr=15.0)  # about 1% of the gap a step
    shift = i2i.MeanShift(3, torch.device("cpu"), (10**6, 10**6))  # fresh images every step
    generator = torch.Generator().manual_seed(1)
    sky = _sets()[2]
    for _ in range(400):
        a, b = torch.rand(2, 4, 3, 32, 32, generator=generator) * 1.2 - 0.6
        shift.observe(a, b + sky)
        optimizer.zero_grad()
        shift.loss(a, a + offset, "A").backward()
        optimizer.step()
    learned = torch.nn.functional.adaptive_avg_pool2d(offset.detach(), GRID)[0]
    assert abs(learned[:, : GRID // 2].mean() + 0.3) < 0.02  # the sky's -0.3
    assert learned[:, GRID // 2 :].abs().amax() < 0.02
