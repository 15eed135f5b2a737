"""The ``alignlab`` command line: every command lives in this package, and nothing else does.

One module per command group, named after the group (``alignlab data ...`` is ``cli/data.py``);
``root.py`` holds the root command, the top-level commands (train, objectives, quickstart), the mounting
of the groups, and the error handling. Command modules sit above every other layer: they may import any
package, and no package imports them.

This ``__init__`` stays light on purpose, so ``python -m alignlab.cli.<group>`` runs one group without
importing the others first.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point (``alignlab = "alignlab.cli:main"``)."""
    import sys

    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
        # Answered before typer and rich load (their import is most of a command's start-up).
        from alignlab import __version__

        print(f"alignlab {__version__}")
        return
    from alignlab.cli.root import main as run

    run(argv)


__all__ = ["main"]
