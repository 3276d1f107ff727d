"""What a model family written outside probspace builds on.

A family is one class: a subclass of :class:`LatentModel` that implements
four hooks (``_fit``, ``_posterior``, ``_log_likelihood``, ``_sample``),
declares its capabilities in :class:`ModelTags` and its constructor
constraints with :class:`Interval` and :class:`Options`, reports its fitted
parameters (``_get_parameters``) and gives the conformance suite a small
recipe (``_conformance_data``, ``_conformance_params``). Defining the class
registers it, so :func:`probspace.load` reads its saved models back once its
module is imported. The user guide's "Writing your own family" walks through
a complete one.

Examples
--------
>>> from probspace.extend import Interval, LatentModel, ModelTags, registered_family
>>> registered_family("GaussianMixture").__name__
'GaussianMixture'
"""

from __future__ import annotations

from ._base import LatentModel, family_name, registered_family
from ._tags import ModelTags
from ._validation import Interval, Options

__all__ = ["Interval", "LatentModel", "ModelTags", "Options", "family_name", "registered_family"]
