"""``python -m trainwright``: the command line, as torchrun starts it in each process
(``torchrun --nproc-per-node 2 -m trainwright train CONFIG``)."""

from trainwright.cli import main

main()
