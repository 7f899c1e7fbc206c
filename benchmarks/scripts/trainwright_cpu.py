"""``trainwright ARGS``, as the installed command runs it, writing its own CPU seconds when it exits.

The number written to ``$TRAINWRIGHT_CPU_FILE`` is this process's CPU time from its start to its
exit (user + system), without the processes it forked to fit the baselines beside the network. On
a busy machine it says what a user would wait for on an idle one, where that work runs on another
core (wall time on a busy machine flatters a command that forks: its processes get more shares).

    python benchmarks/scripts/trainwright_cpu.py train CONFIG --runs-dir DIR
"""

import atexit
import os
import sys
import time

from trainwright.cli import main


def record() -> None:
    with open(os.environ["TRAINWRIGHT_CPU_FILE"], "w") as out:
        out.write(f"{time.process_time()}\n")


atexit.register(record)  # the CLI runs the exit handlers, then leaves without tearing the interpreter down
sys.argv[0] = "trainwright"
main()
