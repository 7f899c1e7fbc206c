"""Ways of training, one file each, every one reading setup -> loop -> finish.

- ``supervised.py``: inputs and labels -> a model that predicts them (transfer learning included).
- ``distill.py``: a small student learns from a trained teacher's soft targets.
- ``calibrate.py``: a finished classifier's probabilities, calibrated on its validation split.
- ``continue_run.py``: a trained classifier learns new data (``trainwright continue``) with a
  continual-learning strategy, and says how much of the old test accuracy it kept.
- ``continual.py``: a task sequence learned with one strategy, its accuracy matrix beside the joint
  upper bound (``trainwright continual``).
- ``cv.py``: k-fold cross-validation, the folds fitted together as one batched model, beside the baselines.
- ``tune.py``: hyperparameter search on Optuna (``study.py``: its storage, search space and trial budget).
- ``lr_find.py``: the learning-rate range test, on its own or as ``train.optimizer.lr: find``.
- ``setup.py`` and ``finish.py``: the stages they share (device, model, run directory, loop parts;
  metrics, predictions, diagnosis, report).

A new recipe is a new file here that calls the shared stages and owns its loop (see the README's
"Adding a recipe").
"""
