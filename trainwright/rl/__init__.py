"""Reinforcement learning: agents that learn by acting in gymnasium environments.

The tree, in the order a run uses it:

- ``envs.py``       vectorized environments from ``env.id`` (gymnasium id or package.module:EnvClass), their state
- ``policies.py``   actor-critic (categorical / diagonal Gaussian) and Q-networks, observation normalization
- ``agent.py``      what every loop shares: ``Observer`` hooks, ``Progress``, episode bookkeeping
- ``returns.py``    generalized advantage estimation; ``replay.py`` the replay buffer; ``scaling.py`` reward scaling
- ``ppo.py``, ``dqn.py``, ``reinforce.py``   one algorithm each, its whole loop in ``train``
- ``evaluation.py`` evaluation episodes and the ``Evaluator`` observer that keeps the best policy
- ``aggregate.py``  IQM over seeds with a stratified-bootstrap interval; ``gif.py`` an episode as a GIF
- ``train.py``      a whole run without the run directory: ``train(config, observers, resume)``
"""
