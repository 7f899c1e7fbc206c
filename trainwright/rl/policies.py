"""The networks an agent acts with: an actor-critic (categorical or diagonal-Gaussian head) and a Q-network.

Both start with ``ObsNorm``, a running mean/std of the observations that lives in the module (so a
saved policy carries its normalization, and evaluation or ``play`` need no wrapper state), and both
have ``act(obs, deterministic, generator)``, the one call evaluation needs. Sampling takes an explicit
``torch.Generator``: torch.distributions' ``sample`` cannot, and a run's randomness must live in one
generator that a checkpoint saves. Initialization follows Stable-Baselines3's actor-critic
(orthogonal, gain sqrt(2) in hidden layers, 0.01 on the policy head, 1 on the value head).

Example:
    >>> policy = ActorCritic(obs_size=4, discrete=True, action_size=2, hidden=[64, 64])
    >>> policy.act(torch.zeros(8, 4)).shape
    torch.Size([8])
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(inputs: int, hidden: list[int], outputs: int, activation: str = "tanh", out_gain: float | None = None) -> nn.Sequential:
    """Linear -> activation per hidden width, then a linear output; orthogonal init when ``out_gain`` is given.

    Example:
        >>> mlp(4, [64, 64], 2, out_gain=0.01)[-1].weight.shape
        torch.Size([2, 64])
    """
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), ACTIVATIONS[activation]()]
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    if out_gain is not None:
        linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
        for i, layer in enumerate(linears):
            nn.init.orthogonal_(layer.weight, gain=out_gain if i == len(linears) - 1 else math.sqrt(2))
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class ObsNorm(nn.Module):
    """(obs - mean) / sqrt(var + eps), clipped to +-clip, with mean and var kept over every observation seen.

    ``update`` merges a batch with Chan et al.'s parallel formula (as SB3's RunningMeanStd), in float64.
    Disabled, it is the identity and its buffers stay at their start values.
    """

    def __init__(self, size: int, enabled: bool, clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.enabled, self.clip, self.eps = enabled, clip, eps
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("var", torch.ones(size, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))  # SB3's start: no division by 0

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return obs
        return ((obs - self.mean.float()) / torch.sqrt(self.var.float() + self.eps)).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Fold a batch of observations (B, size) into the running statistics."""
        if not self.enabled:
            return
        batch = batch.reshape(-1, self.mean.numel()).double()
        n = batch.shape[0]
        batch_mean, batch_var = batch.mean(0), batch.var(0, unbiased=False)
        delta, total = batch_mean - self.mean, self.count + n
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.mean += delta * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs over normalized observations (SB3's default since 1.8).

    Discrete actions: the actor gives logits (B, A). Continuous: the actor gives the Gaussian's
    mean (B, D) and ``log_std`` (D,) is a free parameter, independent of the state.
    """

    def __init__(
        self,
        obs_size: int,
        discrete: bool,
        action_size: int,
        hidden: list[int],
        activation: str = "tanh",
        normalize_obs: bool = False,
        log_std_init: float = 0.0,
    ):
        super().__init__()
        self.discrete = discrete
        self.obs_norm = ObsNorm(obs_size, normalize_obs)
        self.actor = mlp(obs_size, hidden, action_size, activation, out_gain=0.01)
        self.critic = mlp(obs_size, hidden, 1, activation, out_gain=1.0)
        self.log_std = None if discrete else nn.Parameter(torch.full((action_size,), float(log_std_init)))

    # The categorical head works on log-softmax directly rather than through torch.distributions.Categorical:
    # the same numbers with a third of the autograd nodes, and PPO's update on CartPole is bound by nodes, not FLOPs.
    def gaussian(self, x: torch.Tensor) -> Normal:
        """The Gaussian for already-normalized observations x (B, F): mean (B, D), std (D,) broadcast."""
        mean = self.actor(x)
        return Normal(mean, self.log_std.exp().expand_as(mean), validate_args=False)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs): (B, F) -> (B,)."""
        return self.critic(self.obs_norm(obs)).squeeze(-1)

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For a rollout: actions (B,) or (B, D), their log-probabilities (B,) and the values (B,)."""
        x = self.obs_norm(obs)
        if self.discrete:
            log_p = torch.log_softmax(self.actor(x), -1)  # (B, A)
            action = torch.multinomial(log_p.exp(), 1, generator=generator)  # (B, 1)
            log_prob = log_p.gather(-1, action).squeeze(-1)
            action = action.squeeze(-1)
        else:
            dist = self.gaussian(x)
            action = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=generator)
            log_prob = dist.log_prob(action).sum(-1)  # independent dimensions: sum over D
        return action, log_prob, self.critic(x).squeeze(-1)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor, entropy_grad: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For an update: log-probabilities (B,), entropies (B,) and values (B,) of stored actions.

        ``entropy_grad=False`` computes the entropy outside the graph (a metric only, as when ent_coef is 0).
        """
        x = self.obs_norm(obs)
        if self.discrete:
            log_p = torch.log_softmax(self.actor(x), -1)  # (B, A)
            log_prob = log_p.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                entropy = -(log_p.exp() * log_p).sum(-1)
        else:
            dist = self.gaussian(x)
            log_prob = dist.log_prob(actions).sum(-1)
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                entropy = dist.entropy().sum(-1)
        return log_prob, entropy, self.critic(x).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions for observations (B, F): the mode when deterministic, else a sample."""
        x = self.obs_norm(obs)
        if self.discrete:
            logits = self.actor(x)
            if deterministic:
                return logits.argmax(-1)
            return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
        dist = self.gaussian(x)
        if deterministic:
            return dist.mean
        return dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=generator)


class QNetwork(nn.Module):
    """Q(s, .) for discrete actions: observations (B, F) -> action values (B, A); torch's default init as in SB3's DQN."""

    def __init__(self, obs_size: int, n_actions: int, hidden: list[int], activation: str = "relu", normalize_obs: bool = False):
        super().__init__()
        self.obs_norm = ObsNorm(obs_size, normalize_obs)
        self.net = mlp(obs_size, hidden, n_actions, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.obs_norm(obs))

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None, epsilon: float = 0.05
    ) -> torch.Tensor:
        """Greedy actions (B,); not deterministic: epsilon-greedy, the usual way to evaluate a DQN stochastically."""
        q = self(obs)
        greedy = q.argmax(-1)
        if deterministic:
            return greedy
        explore = torch.rand(greedy.shape, generator=generator) < epsilon
        return torch.where(explore, torch.randint(q.shape[-1], greedy.shape, generator=generator), greedy)
