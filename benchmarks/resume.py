"""What an interruption costs: train on the project's data, Ctrl-C it, resume with `dvc repro`.

Runs the train stage of this project (`dvc repro -f -s train`), sends SIGINT to its
process group once `--after` epochs are backed up, then runs `dvc repro -s train`
again and reports the epochs kept, the epochs trained twice, and the wall time lost
compared with the epoch time (work since the last backup plus the restart).

    python benchmarks/resume.py [--after 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METADATA = ROOT / "models" / ".backup" / "training_metadata.json"


def backed_up() -> int | None:
    """Epochs in the backup; None while the file is missing or being rewritten."""
    try:
        return json.loads(METADATA.read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--after", type=int, default=5, help="interrupt once this many epochs are backed up")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    run = subprocess.Popen(["dvc", "repro", "-f", "-s", "train"], cwd=ROOT, env=env, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    epoch_marks = [(0, start)]  # (epochs backed up, when first seen)
    while epoch_marks[-1][0] < args.after:
        if run.poll() is not None:
            raise SystemExit("training ended before the interruption")
        epoch = backed_up()
        if epoch is not None and epoch > epoch_marks[-1][0]:
            epoch_marks.append((epoch, time.perf_counter()))
        time.sleep(0.02)
    time.sleep(0.6 * (epoch_marks[-1][1] - epoch_marks[-2][1]))  # interrupt well inside the next epoch
    interrupted = time.perf_counter()
    os.killpg(run.pid, signal.SIGINT)
    first, _ = run.communicate()
    done = backed_up()
    epoch_time = (epoch_marks[-1][1] - epoch_marks[1][1]) / max(1, epoch_marks[-1][0] - epoch_marks[1][0])
    since_backup = interrupted - epoch_marks[-1][1]

    resume_start = time.perf_counter()
    second = subprocess.run(["dvc", "repro", "-s", "train"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    resumed = time.perf_counter() - resume_start
    started = len(re.findall(r"^Epoch \d+/", first, re.M))
    rerun = len(re.findall(r"^Epoch \d+/", second.stdout, re.M))
    print(f"interrupted after {interrupted - start:.1f} s: {done} epoch(s) backed up, {started} started")
    print(f"resume trained {rerun} epoch(s) in {resumed:.1f} s; epoch time {epoch_time:.1f} s")
    print(f"lost: {started - done} epoch(s) of work, {since_backup:.1f} s since the last backup "
          f"({since_backup / epoch_time:.2f} epoch)")


if __name__ == "__main__":
    main()
