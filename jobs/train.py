"""Ray job entrypoint: `python jobs/train.py CONFIG [--set KEY=VALUE]... [--overwrite]` = `genart train CONFIG ...`.

Submitted with `genart submit` or `ray job submit --working-dir . -- python jobs/train.py CONFIG ...`;
inside a Ray job, ray.init() joins the job's own cluster (RAY_ADDRESS), so keep the config's address null.
"""

import sys
from pathlib import Path

# Run from a checkout (the job's working_dir) without installing genart.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genart.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["train", *sys.argv[1:]], prog_name="jobs/train.py")
