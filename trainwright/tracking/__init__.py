"""Experiment tracking: the run's config, per-epoch history, test metrics and files, also logged where
teams already look (MLflow, TensorBoard). Both are callbacks whose library works in a worker process
(``pipe.py``); the libraries are the ``track`` extra.
"""
