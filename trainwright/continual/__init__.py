"""Continual learning: train on a sequence of tasks and measure what the model keeps.

- ``scenarios``: a data set cut into tasks by classes (split-digits built in), task-IL and class-IL;
- ``strategies``: naive, replay, EWC, LwF, joint, as additions to a plain supervised step;
- ``buffer``: the class-balanced replay buffer, saved as safetensors;
- ``measures``: the accuracy matrix and its average accuracy, forgetting and backward transfer;
- ``loop``: the strategy's training step, and the reference loop over tasks that the benchmark and tests run;
- ``task_data``: one task's splits in the shape the recipes' shared stages take.

The recipes ``trainwright/recipes/continual.py`` and ``continue_run.py`` put these to use.
"""
