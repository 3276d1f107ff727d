"""The one progress bar of probspace's loops (EM, missing-value EM, Gibbs): tqdm when asked, else nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["progress_bar"]


class _NoBar:
    """Stands in for a tqdm bar when progress is off."""

    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def set_postfix(self, **kwargs: Any) -> None:
        """Do nothing."""


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, desc: str, unit: str) -> Iterator[Any]:
    """Yield a tqdm bar (closed on exit) when ``enabled``, else an object whose methods do nothing."""
    if not enabled:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, leave=False)
    try:
        yield bar
    finally:
        bar.close()
