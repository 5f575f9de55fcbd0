"""What the user sees during training: a progress bar, losses.jsonl, TensorBoard, a loss curve.

Only rank 0 logs. Values arrive already reduced to Python floats at logging intervals, which
are the only points where the training loop waits for the device.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, TextColumn

from i2i.core.errors import WriteError, writing
from i2i.core.files import atomic_write
from i2i.core.progress import progress_bar
from i2i.models.losslog import LOSS_LOG, RUN_WAY_OUT, append, read_records, trim_after
from i2i.viz import line_charts

METRICS_FILE = LOSS_LOG
LOSS_CURVE = "loss_curve.png"


def _tensorboard_writer(log_dir: Path, start_step: int) -> Any:
    """Events of a resumed run hide the old ones after its checkpoint, which it trains again
    (else TensorBoard draws both, a zig-zag back in time), as the loss log drops them."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=start_step + 1 if start_step else None)


# TensorBoard writes its events in a thread of its own, which prints a traceback when a write
# fails (a full disk, the run folder deleted) and keeps the error for the next write from
# the training, which says it in one line: the thread's traceback is noise.
_EVENT_THREAD = "_AsyncWriterThread"


def _quiet_event_thread(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def excepthook(args: Any) -> None:
        if not (
            type(args.thread).__name__ == _EVENT_THREAD and isinstance(args.exc_value, OSError)
        ):
            hook(args)

    return excepthook


def _duration(seconds: float) -> str:
    """``42s``, ``7m05s``, ``3h12m``: a time left as a log line says it."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class RunLogger:
    def __init__(self, run_dir: Path, total_steps: int, start_step: int, enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.console = Console(stderr=True, soft_wrap=True)
        self.metrics_path = self.run_dir / METRICS_FILE
        self.tensorboard = (
            _tensorboard_writer(self.run_dir / "tensorboard", start_step) if enabled else None
        )
        self._thread_hook = threading.excepthook
        if self.tensorboard is not None:
            threading.excepthook = _quiet_event_thread(self._thread_hook)
        self.progress: Progress | None = None
        self.total_steps = total_steps
        self._last_time, self._last_step = time.perf_counter(), start_step
        if enabled:
            # A resumed run repeats the steps after its checkpoint: drop their old records.
            trim_after(self.metrics_path, start_step, self.print)
            self.progress = progress_bar(
                self.console.is_terminal,
                label="[bold]epoch {task.fields[epoch]}",
                extra=(TextColumn("{task.fields[speed]}"), TextColumn("{task.fields[losses]}")),
                console=self.console,
            )
            self.bar = self.progress.add_task(
                "train", total=total_steps, completed=start_step, epoch="-", speed="", losses=""
            )
            self.progress.start()

    def advance(self, step: int, epoch: int) -> None:
        if self.progress is not None:
            self.progress.update(self.bar, completed=step, epoch=epoch + 1)

    def log(self, step: int, epoch: int, values: dict[str, float]) -> None:
        """Losses of the last interval, with the speed since the previous call."""
        if not self.enabled:
            return
        now = time.perf_counter()
        speed = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, step
        losses = self._write(step, epoch, {"it_per_s": speed}, values)
        if self.progress is not None and self.console.is_terminal:
            self.progress.update(self.bar, speed=f"{speed:.2f} it/s", losses=losses)
        else:  # a log file: each line says how far, and how long is left at this speed
            left = _duration((self.total_steps - step) / speed) if speed > 0 else "?"
            self.console.print(
                f"step {step}/{self.total_steps} epoch {epoch + 1} {speed:.2f} it/s, {left} left "
                f"{losses}",
                highlight=False,
            )

    def metrics(self, step: int, epoch: int, values: dict[str, float | None]) -> None:
        """Evaluation results: same files, a line of their own, no effect on the speed."""
        if not self.enabled:
            return
        text = self._write(step, epoch, {}, values)
        self.console.print(f"step {step} {text}", highlight=False)

    def _write(self, step: int, epoch: int, extra: dict[str, float], values: dict[str, Any]) -> str:
        append(
            self.metrics_path,
            {"step": step, "epoch": epoch + 1, "time": time.time(), **extra, **values},
        )
        if self.tensorboard is not None:
            with writing(self.run_dir / "tensorboard", RUN_WAY_OUT):
                for key, value in values.items():
                    if value is not None:
                        self.tensorboard.add_scalar(key, value, step)
        return " ".join(f"{k}={v:.3g}" for k, v in values.items() if k != "lr" and v is not None)

    def image(self, tag: str, image: Any, step: int) -> None:
        if self.tensorboard is not None:
            import numpy as np

            with writing(self.run_dir / "tensorboard", RUN_WAY_OUT):
                self.tensorboard.add_image(tag, np.asarray(image), step, dataformats="HWC")

    def write_loss_curve(self) -> Path | None:
        if not self.enabled:
            return None
        records = read_records(self.metrics_path, self.print)
        keys = (
            [k for k in records[-1] if k not in ("step", "epoch", "time", "it_per_s")]
            if records
            else []
        )
        if not keys:
            return None
        series = {
            k: (
                [r["step"] for r in records if r.get(k) is not None],
                [float(r[k]) for r in records if r.get(k) is not None],
            )
            for k in keys
        }
        path = self.run_dir / LOSS_CURVE
        chart = line_charts(series)
        atomic_write(path, lambda f: chart.save(f, format="PNG"))
        return path

    def print(self, message: str) -> None:
        if self.enabled:
            self.console.print(message, highlight=False)

    def close(self, failed: bool = False) -> None:
        """``failed``: the training is ending on an error, which an event file that cannot be
        flushed (its folder deleted, a full disk) must not hide."""
        if self.progress is not None:
            self.progress.stop()
        if self.tensorboard is not None:
            try:
                with writing(self.run_dir / "tensorboard", RUN_WAY_OUT):
                    self.tensorboard.close()
            except WriteError:
                if not failed:
                    raise
            finally:
                threading.excepthook = self._thread_hook
