"""Independent jobs (the pip-compile runs of the lock's pairs) run side by side, their output shown as if they had
run one after another: each job's printed lines are held back and shown in the jobs' order, never interleaved.

The time of a pip-compile run goes into waiting (for the index, for its child), so a few at once pay off even on
a small machine; the number is bounded by the cores and by MAX_JOBS, which an index tolerates.
"""

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

MAX_JOBS = 4
_local = threading.local()  # the job a worker thread runs: its held-back output and its children
_lock = threading.Lock()


def default_jobs():
    return max(1, min(MAX_JOBS, os.cpu_count() or 1))


class Job:
    def __init__(self):
        self.output, self.children, self.stopped = [], set(), False

    def stop(self):
        """Stop the job's children (and any it would start): its result is no longer wanted."""
        with _lock:
            self.stopped = True
            children = list(self.children)
        for child in children:
            if child.poll() is None:
                child.terminate()


class Stopped(Exception):
    """Raised in a job that was stopped, instead of starting another child."""


def started(child):
    """run() started `child`: a stopped job's child is stopped at once (Stopped is raised by the caller's check)."""
    job = getattr(_local, "job", None)
    if job is None:
        return
    with _lock:
        job.children.add(child)
        stopped = job.stopped
    if stopped and child.poll() is None:
        child.terminate()


def finished(child):
    job = getattr(_local, "job", None)
    if job is not None:
        with _lock:
            job.children.discard(child)


def check_stopped():
    job = getattr(_local, "job", None)
    if job is not None and job.stopped:
        raise Stopped()


class _Routed:
    """sys.stdout or sys.stderr while jobs run: a worker's writes are held in its job, the main thread's pass."""

    def __init__(self, real, name):
        self.real, self.name = real, name

    def write(self, text):
        job = getattr(_local, "job", None)
        if job is None:
            return self.real.write(text)
        job.output.append((self.name, text))
        return len(text)

    def flush(self):
        if getattr(_local, "job", None) is None:
            self.real.flush()

    def __getattr__(self, name):
        return getattr(self.real, name)


def show(job, real):
    """A job's held-back output, to the real streams (workers still running keep writing into their own jobs)."""
    streams = {"stdout": real[0], "stderr": real[1]}
    for name, text in job.output:
        streams[name].write(text)
        streams[name].flush()


def in_order(items, work, jobs):
    """Yield (item, result of work(item)) in the order of `items`, running up to `jobs` at a time.

    Each job's output is shown just before its result is yielded. A job that raises is raised here in its turn,
    after every earlier one was yielded; the jobs after it are stopped (their children terminated), none is
    started after it. With jobs <= 1 (or one item) the work runs here, one after another, as it always did.
    """
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            yield item, work(item)
        return
    states = [Job() for _ in items]

    def run(index):
        _local.job = states[index]
        try:
            check_stopped()
            return work(items[index])
        except BaseException:
            # The jobs after a failed one are not wanted, whichever fails first in order: none starts now.
            for state in states[index + 1:]:
                state.stop()
            raise
        finally:
            _local.job = None

    real = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Routed(real[0], "stdout"), _Routed(real[1], "stderr")
    pool = ThreadPoolExecutor(max_workers=min(jobs, len(items)), thread_name_prefix="freeze-job")
    futures = [pool.submit(run, index) for index in range(len(items))]

    def stop_from(first):
        for index in range(first, len(items)):
            futures[index].cancel()
            states[index].stop()

    try:
        for index, item in enumerate(items):
            try:
                result = futures[index].result()
            except BaseException:
                stop_from(index + 1)
                raise
            finally:
                show(states[index], real)
            yield item, result
    except BaseException:  # an error, an interrupt, or the caller stopped early
        stop_from(0)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        sys.stdout, sys.stderr = real
