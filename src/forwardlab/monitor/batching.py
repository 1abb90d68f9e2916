"""Micro-batching: concurrent requests share one model call and one store transaction.

A predict of one row costs about as much as a predict of a hundred (pandas and scikit-learn overhead
dominate), and a commit costs the same for one row or many. So requests put their records on a queue;
one consumer takes what is waiting (up to `max_records`, waiting at most `max_wait_s` for more), runs the
work for all of them in a worker thread, and resolves each request's future with its share of the
results. Work runs off the event loop, so the loop keeps accepting requests meanwhile, and those form
the next batch. A request is answered only after the work, commit included, has finished for its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class _Job(Generic[In, Out]):
    items: Sequence[In]
    future: asyncio.Future[list[Out]]


class MicroBatcher(Generic[In, Out]):
    """Runs `work(items) -> results` (one result per item, same order) on batches of queued items."""

    def __init__(
        self,
        work: Callable[[list[In]], list[Out]],
        *,
        max_records: int = 256,
        max_wait_s: float = 0.002,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._work = work
        self._max_records = max_records
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Job[In, Out]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forwardlab-batch")
        self._consumer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._consumer = asyncio.get_running_loop().create_task(self._consume())

    async def stop(self) -> None:
        """Finish the batch in progress, fail what is still queued, and release the worker thread."""
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the service is shutting down"))
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def submit(self, items: Sequence[In]) -> list[Out]:
        """Queue `items` and wait until the batch holding them has been processed."""
        future: asyncio.Future[list[Out]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(items, future))
        return await future

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            count = len(jobs[0].items)
            deadline = loop.time() + self._max_wait_s
            while count < self._max_records:
                try:
                    job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                jobs.append(job)
                count += len(job.items)
            await self._run(loop, jobs)

    async def _run(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job[In, Out]]) -> None:
        items = [item for job in jobs for item in job.items]
        work = loop.run_in_executor(self._executor, self._work, items)
        try:
            await asyncio.wait([work])  # a cancelled wait leaves the work running
        finally:
            # On shutdown the batch in flight still finishes and its requests are still answered.
            work.add_done_callback(lambda done: self._settle(jobs, done))

    def _settle(self, jobs: list[_Job[In, Out]], work: asyncio.Future[list[Out]]) -> None:
        error = work.exception()
        if error is None and self._on_batch is not None:
            self._on_batch(sum(len(job.items) for job in jobs))
        start = 0
        for job in jobs:
            end = start + len(job.items)
            if not job.future.done():  # a request whose client went away is already cancelled
                if error is not None:
                    job.future.set_exception(error)
                else:
                    job.future.set_result(work.result()[start:end])
            start = end
