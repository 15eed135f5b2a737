"""``python -m alignlab.cli`` runs the ``alignlab`` command, like ``python -m alignlab``."""

from alignlab.cli.root import main

main()
