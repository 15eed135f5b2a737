"""Durable job state (alignlab.durable): atomic snapshots, orphans removed, damaged snapshots skipped,
a full disk reported with the space needed, resumed logs without duplicates, and stop signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from alignlab.durable import DiskFull, Interrupted, Snapshots, StopSignals, truncate_jsonl


def _fill(payload: bytes):
    def fill(folder: Path) -> None:
        (folder / "state.bin").write_bytes(payload)
        (folder / "sub").mkdir()
        (folder / "sub" / "meta.json").write_text('{"ok": true}')

    return fill


def test_snapshots_are_atomic_pruned_and_listed(tmp_path):
    snaps = Snapshots(tmp_path, keep=2)
    for step in (1, 2, 3):
        snaps.write(step, _fill(bytes([step]) * 100))
    assert [s for s, _ in snaps.steps()] == [2, 3]
    manifest = json.loads((tmp_path / "step-3" / "manifest.json").read_text())
    assert manifest == {"state.bin": 100, "sub/meta.json": 12}
    assert snaps.latest() == (tmp_path / "step-3", [])
    assert not list(tmp_path.glob(".tmp-*"))


def test_orphans_removed_on_start_and_on_error(tmp_path):
    orphan = tmp_path / ".tmp-step-7-424242"
    orphan.mkdir()
    (orphan / "model.safetensors").write_bytes(b"x" * 1000)
    snaps = Snapshots(tmp_path)
    assert snaps.clean_orphans() == [orphan] and not orphan.exists()

    def broken(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"y" * 10)
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        snaps.write(8, broken)
    assert list(tmp_path.iterdir()) == []  # neither the snapshot nor its temporary folder


def test_checkpoint_helpers_remove_orphans_and_skip_damaged(tmp_path):
    from alignlab.train.checkpoint import latest_checkpoint

    snaps = Snapshots(tmp_path, keep=3)
    for step in (1, 2):
        snaps.write(step, lambda f, s=step: (f / "trainer_state.json").write_text(json.dumps({"step": s})))
    (tmp_path / ".tmp-step-3-99999").mkdir()
    (tmp_path / "step-2" / "trainer_state.json").write_text('{"step"')  # cut short after writing
    with pytest.warns(UserWarning) as caught:
        assert latest_checkpoint(tmp_path) == tmp_path / "step-1"
    messages = " ".join(str(w.message) for w in caught)
    assert (
        ".tmp-step-3-99999" in messages
        and "step-2 is damaged (trainer_state.json has 7 bytes, 11" in messages
    )
    assert not (tmp_path / ".tmp-step-3-99999").exists()


def test_full_disk_is_reported_before_writing(tmp_path):
    snaps = Snapshots(tmp_path)
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    with pytest.raises(DiskFull) as info:
        snaps.write(1, _fill(b"z"), estimate_bytes=free * 2 + 10**9)
    assert str(tmp_path) in str(info.value) and "it needs about" in str(info.value)
    assert snaps.steps() == []


def test_full_disk_while_writing_simulated(tmp_path):
    """ENOSPC raised by the write call itself (as on a full disk), whatever the real free space."""

    def fill(folder: Path) -> None:
        raise OSError(28, "No space left on device", str(folder / "optimizer.pt"))

    with pytest.raises(DiskFull, match=f"no space left to write a snapshot in {tmp_path}"):
        Snapshots(tmp_path).write(1, fill, estimate_bytes=123)
    assert list(tmp_path.iterdir()) == []


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


def test_full_disk_on_a_real_small_tmpfs(tmp_path):
    disk = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    if not _mount_tmpfs(disk, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root); the simulated ENOSPC test covers the path")
    try:
        snaps = Snapshots(disk, keep=1)
        snaps.write(1, _fill(b"a" * 300_000))
        with pytest.raises(DiskFull, match="it needs more space"):
            snaps.write(2, _fill(b"b" * 2_000_000))  # no estimate given: the write itself hits ENOSPC
        assert [s for s, _ in snaps.steps()] == [1] and not list(disk.glob(".tmp-*"))
        assert snaps.latest() == (disk / "step-1", [])  # the previous snapshot is intact
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_truncate_jsonl_after_resume(tmp_path):
    log = tmp_path / "metrics.jsonl"
    lines = [{"step": 1}, {"note": "x"}, {"step": 2}, {"step": 3}, {"step": 4}]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 5, "lo')
    assert truncate_jsonl(log, "step", 2) == 3  # steps 3 and 4, and the torn line
    assert [json.loads(x) for x in log.read_text().splitlines()] == lines[:3]
    assert truncate_jsonl(log, "step", 2) == 0


def test_stop_signals(tmp_path):
    seen = []
    before = signal.getsignal(signal.SIGINT)
    with StopSignals(seen.append) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == signal.SIGTERM and seen == [signal.SIGTERM]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # a second signal that is a Ctrl-C aborts at once
    assert signal.getsignal(signal.SIGINT) is before
    assert (
        Interrupted(signal.SIGINT, "x").exit_code == 130 and Interrupted(signal.SIGTERM, "x").exit_code == 143
    )


def test_library_errors_meaning_a_full_disk(tmp_path):
    from alignlab.durable import is_disk_full
    from alignlab.train.checkpoint import save_model

    wrapped = Exception("Error while serializing: I/O error: No space left on device (os error 28)")
    assert is_disk_full(wrapped) and is_disk_full(OSError(28, "x")) and not is_disk_full(OSError(2, "x"))

    class FullDiskModel:
        def parameters(self):
            import torch

            return [torch.zeros(1000)]  # 4000 bytes of float32

        def save_pretrained(self, path, **_):
            raise wrapped  # what safetensors raises (not an OSError) on a full disk

    with pytest.raises(DiskFull) as info:
        save_model(FullDiskModel(), None, tmp_path / "model")
    assert f"in {tmp_path / 'model'}" in str(info.value) and "it needs about 4.4 KB" in str(info.value)


def test_missing_model_path_is_one_message():
    from alignlab.models.loading import ModelLoadError, ModelSettings, load_tokenizer

    with pytest.raises(ModelLoadError, match="model.path '/no/such/model': no such folder"):
        load_tokenizer(ModelSettings(path="/no/such/model"))


@pytest.mark.slow  # trains a tiny model on a 3 MB tmpfs
def test_train_on_a_full_disk_says_so(tmp_path):
    import sys

    disk = tmp_path / "small"
    if not _mount_tmpfs(disk, "3m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        command = [
            str(Path(sys.executable).with_name("alignlab")),
            "train",
            "--out",
            str(disk / "run"),
            "--set",
            "train.steps=2",
            "--set",
            "train.save_every=1",
            "--set",
            "train.batch_size=2",
            "--set",
            "train.progress=false",
        ]
        run = subprocess.run(command, capture_output=True, text=True, env=os.environ, timeout=600)
    finally:
        leftovers = list((disk / "run" / "checkpoints").glob(".tmp-*")) if (disk / "run").exists() else []
        subprocess.run(["umount", str(disk)], check=False)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-800:]
    assert (
        "no space left to write" in run.stderr
        and str(disk / "run") in run.stderr
        and "it needs about" in run.stderr
    )
    assert leftovers == []
