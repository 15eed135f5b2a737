"""Run `alignlab train` in this process and SIGKILL it right after step N's checkpoint (for resume tests).

python -m tests.train._kill_at N --out DIR [--set key=value ...]
"""

from __future__ import annotations

import argparse
import os
import signal

from alignlab.config import load_config
from alignlab.train.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", type=int)
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()

    def kill(step: int) -> None:
        if step == args.step:
            os.kill(os.getpid(), signal.SIGKILL)

    Trainer(load_config(None, [f"out={args.out}", *args.set]), after_step=[kill]).run()


if __name__ == "__main__":
    main()
