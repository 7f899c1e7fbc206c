"""The GAN loop: whole real batches, one history row per evaluation period, the shared callbacks unchanged,
and a state that resumes to exactly the run that was not interrupted."""

from __future__ import annotations

import torch

from trainwright.config import EarlyStoppingConfig
from trainwright.config.gan import GANConfig
from trainwright.data.mixtures import MIXTURES
from trainwright.models.gan import build_discriminator, build_generator
from trainwright.rundir import RunDir
from trainwright.training.callbacks import Callback, CallbackList, Checkpoint, EarlyStopping, HistoryCSV
from trainwright.training.checkpoint import load_state
from trainwright.training.gan_loop import GANFit, RealBatches, fit_gan
from trainwright.training.gan_step import GANSteps

CFG = GANConfig(latent_size=4, g_hidden=[16, 16], d_hidden=[16], ema=0.9, r1=0.01)
POINTS = MIXTURES["ring"].sample(200, seed=0)


def test_real_batches_are_whole_shuffled_passes_that_resume_where_they_were():
    batches = RealBatches(torch.arange(10.0)[:, None], torch.arange(10), 4, torch.Generator().manual_seed(0))
    seen = [batches.next() for _ in range(2)]
    assert all(len(x) == 4 and torch.equal(x[:, 0].long(), y) for x, y in seen)
    assert len({int(v) for x, _ in seen for v in x[:, 0]}) == 8  # one pass: no row twice, the 2 left over wait
    state = batches.state_dict()
    after = [batches.next()[1] for _ in range(3)]
    again = RealBatches(torch.arange(10.0)[:, None], torch.arange(10), 4, torch.Generator().manual_seed(99))
    again.load_state_dict(state)
    assert all(torch.equal(a, again.next()[1]) for a in after)


def make(callbacks: list[Callback], steps: int = 40, every: int = 10) -> GANFit:
    torch.manual_seed(0)
    gan = GANSteps(build_generator(CFG, (2,)), build_discriminator(CFG, (2,)), CFG, total_steps=steps)

    def evaluate(g: GANSteps) -> dict[str, float]:  # a quality measure in [0, 1]: share of samples near the ring
        x = g.sample(100, generator=torch.Generator().manual_seed(1))
        return {"quality": float(((x.norm(dim=1) - 1).abs() < 0.2).double().mean())}

    batches = RealBatches(POINTS, None, 16, torch.Generator().manual_seed(0))
    return GANFit(gan, batches, evaluate, steps, every, callbacks=CallbackList(callbacks))


class StopAt(Callback):
    order = 5  # before the checkpoint, which then saves this period as the last

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, state, logs):
        if state.epoch == self.epoch:
            state.request_stop("cut")


def keeper() -> EarlyStopping:
    return EarlyStopping(EarlyStoppingConfig(monitor="quality", mode="max", patience=100))


def test_one_row_per_period_and_the_shared_callbacks_work_unchanged(tmp_path):
    run_dir = RunDir.create(tmp_path, "gan")
    fit = fit_gan(make([keeper(), HistoryCSV(run_dir), Checkpoint(run_dir)], steps=35))
    assert [row["step"] for row in fit.history] == [10, 20, 30, 35] and fit.epoch == fit.max_epochs == 4
    assert {"d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm", "quality", "lr_g"} <= set(fit.history[0])
    assert fit.history[-1]["lr_g"] == 0.0  # the linear decay ends at 0
    assert run_dir.history.read_text().count("\n") == 5
    assert set(fit.modules) == {"generator", "discriminator", "generator_ema"} and set(fit.optimizers) == {
        "generator",
        "discriminator",
    }
    assert load_state(run_dir.checkpoint)["epoch"] == 4


def test_a_resumed_run_is_bit_identical_to_one_never_interrupted(tmp_path):
    whole = fit_gan(make([keeper()]))
    run_dir = RunDir.create(tmp_path, "cut")
    cut = fit_gan(make([keeper(), StopAt(2), Checkpoint(run_dir)]))
    assert cut.epoch == 2
    resumed = make([keeper(), Checkpoint(run_dir)])
    torch.manual_seed(123)  # whatever happened in between: the checkpoint restores the random streams
    resumed.load_state_dict(load_state(run_dir.checkpoint))
    fit_gan(resumed)
    assert [row["d_loss"] for row in resumed.history] == [row["d_loss"] for row in whole.history]
    for name, module in whole.modules.items():
        assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), resumed.modules[name].state_dict().values()))
