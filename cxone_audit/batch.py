"""Audit many rows at once over one shared resolver.

Rows are audited by a fixed number of workers (``concurrency``), so a batch
is limited by DNS round trips rather than by waiting in line, and the
resolver is never flooded. Results come back in input order; rows with an
input error become ``input-error`` results without any DNS question.

A row's current allowlist, when there is one, is the file its
``allowlist`` column names (relative to the spreadsheet's folder), else the
run's own; :class:`AllowlistFiles` reads each file once per run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .allowlist import CurrentAllowlist, as_current, load_allowlist
from .audit import DomainResult, audit_domain, input_error
from .inputs import InputRow, find_cell
from .resolver import Resolver

__all__ = [
    "ALLOWLIST_COLUMNS",
    "DEFAULT_CONCURRENCY",
    "AllowlistFiles",
    "audit_rows",
    "run_rows",
]

log = logging.getLogger(__name__)

#: Domains audited at once by default.
DEFAULT_CONCURRENCY = 32

#: Spreadsheet columns naming a row's allowlist file (matched loosely).
ALLOWLIST_COLUMNS = ("allowlist", "allowlist_file")

OnResult = Callable[[DomainResult], None]


class AllowlistFiles:
    """The current allowlist of each row: its own file, or the run's.

    Parameters
    ----------
    default
        The run's allowlist, for rows whose ``allowlist`` cell is empty or
        absent; ``None`` for none.
    folder
        Where relative paths in the ``allowlist`` column start: the
        spreadsheet's folder. ``None``: the working directory.

    Each distinct file (by resolved path) is read once, when the first row
    that names it is audited. A file that cannot be read gives the rows
    naming it a :class:`~.allowlist.CurrentAllowlist` holding the reason.
    """

    def __init__(
        self,
        default: CurrentAllowlist | Sequence[str] | None = None,
        folder: str | Path | None = None,
    ) -> None:
        self.default = as_current(default)
        self.folder = Path(folder) if folder is not None else Path()
        self._read: dict[Path, CurrentAllowlist] = {}

    def for_row(self, columns: Mapping[str, Any]) -> CurrentAllowlist | None:
        """The allowlist that applies to a row with these columns."""
        written = (find_cell(columns, *ALLOWLIST_COLUMNS) or "").strip()
        if not written:
            return self.default

        path = _resolved(self.folder / written)
        folder = _resolved(self.folder)
        if not path.is_relative_to(folder):
            # A spreadsheet may come from elsewhere: its cells must not make
            # the audit read (and show lines of) any file the user can read.
            return CurrentAllowlist(written, error=(
                "the allowlist file must be in the spreadsheet's folder or "
                "below it (a link is followed to where it points); put it "
                "there, or pass it with --allowlist"))
        if path not in self._read:
            self._read[path] = load_allowlist(path)
        return dataclasses.replace(self._read[path], file=written)


def _resolved(path: Path) -> Path:
    """The absolute path without links, or just absolute when that fails."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte
        return path.absolute()


async def _audit_row(
    row: InputRow, resolver: Resolver, allowlists: AllowlistFiles
) -> DomainResult:
    if row.error or row.domain is None or row.region is None:
        return input_error(
            row.row, row.raw, row.error or "no domain",
            domain=row.domain, region=row.region, notes=row.notes,
            columns=row.columns,
        )
    return await audit_domain(
        row.domain, row.region, resolver, row=row.row, raw=row.raw,
        notes=row.notes, columns=row.columns,
        allowlist=allowlists.for_row(row.columns),
    )


async def audit_rows(
    rows: Sequence[InputRow],
    resolver: Resolver,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = True,
    on_result: OnResult | None = None,
    skip: Collection[int] = (),
    keep: bool = True,
    allowlist: CurrentAllowlist | Sequence[str] | None = None,
    allowlist_folder: str | Path | None = None,
) -> list[DomainResult]:
    """Audit every row; return one result per row, in input order.

    Parameters
    ----------
    rows
        Rows from :mod:`cxone_audit.inputs`.
    resolver
        Shared by all rows, so common include chains are asked once.
    concurrency
        How many domains are audited at the same time.
    progress
        Show a progress bar (terminal or notebook).
    on_result
        Called with each result as soon as it is ready (any order).
    skip
        Row numbers already done (a resumed run): neither audited nor
        returned.
    keep
        Return the results. A long run that streams them through
        ``on_result`` passes ``False`` so memory stays flat.
    allowlist
        The mail server's current allowlist, already read (entry texts or
        a :class:`~.allowlist.CurrentAllowlist`), compared with each row's
        region; a row's ``allowlist`` cell (a file) overrides it.
    allowlist_folder
        Where relative paths in the ``allowlist`` column start: the
        spreadsheet's folder. ``None``: the working directory.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    allowlists = AllowlistFiles(allowlist, allowlist_folder)
    todo = [row for row in rows if row.row not in skip]
    results: list[DomainResult | None] = [None] * len(todo) if keep else []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(todo)):
        queue.put_nowait(index)

    with tqdm(total=len(rows), initial=len(rows) - len(todo),
              disable=not progress, unit="domain", desc="auditing") as bar:

        stopping = False

        async def worker() -> None:
            while not stopping and not queue.empty():
                index = queue.get_nowait()
                result = await _audit_row(todo[index], resolver,
                                          allowlists)
                if keep:
                    results[index] = result
                if on_result is not None:
                    on_result(result)
                bar.update(1)

        tasks = [asyncio.create_task(worker())
                 for _ in range(min(concurrency, len(todo)))]
        try:
            await _wait_all(tasks)
        except BaseException:
            # Ctrl-C or a failed row: take no new row. A worker whose
            # cancellation is swallowed by a DNS answer arriving at the same
            # moment still stops after its current row.
            stopping = True
            await _stop(tasks)
            raise

    return [r for r in results if r is not None]


async def _wait_all(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every worker; raise the first worker failure at once."""
    if not tasks:
        return
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        task.result()


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the workers and wait until each has returned."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run_rows(
    rows: Sequence[InputRow], resolver: Resolver, **options: object
) -> list[DomainResult]:
    """Blocking form of :func:`audit_rows` for scripts and the CLI."""
    return asyncio.run(audit_rows(rows, resolver, **options))  # type: ignore[arg-type]
