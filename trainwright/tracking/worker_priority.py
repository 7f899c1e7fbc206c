"""The tracking workers' CPU priority, shared by ``mlflow_worker.py`` and ``tensorboard_worker.py``.

The workers run as scripts and import nothing of trainwright (nor torch), so they import this file as a
sibling module: a script's own directory is first on ``sys.path``.
"""

from __future__ import annotations

import os


def priority(lowest: bool, threads: tuple[int, ...] = (0,)) -> None:
    """While the run trains, take only CPU time it leaves idle; after training (``hurry``), the usual share.

    Lowest: this process's own scheduling group at nice 19 (Linux's autogroup: the training process
    started this one in a session of its own, so it is not in the training's group, whose CPU share its
    members split whatever their nice values), and SCHED_IDLE (a woken idle task never preempts a normal
    one); elsewhere nice 19. Raising them again needs privileges (root, CAP_SYS_NICE): without, the
    worker stays low, and after training it only takes longer on a busy machine.
    """
    try:
        with open("/proc/self/autogroup", "w") as group:
            group.write("19" if lowest else "0")
    except OSError:
        pass
    try:
        for thread in threads:  # the policy is each thread's (0: the calling one)
            os.sched_setscheduler(thread, os.SCHED_IDLE if lowest else os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed
        try:
            os.nice(19 if lowest else 0)
        except OSError:
            pass
