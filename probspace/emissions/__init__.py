"""Emission components: the observation model of an HMM state or a mixture component.

One file per emission family; an HMM composes initial probabilities, a
transition matrix and one of these, and a finite mixture reuses the same
objects without transitions. See :class:`Emission` for the protocol.

Every module of this package is imported here and its ``__all__`` exported,
so a new emission file needs no export line: its class registers itself by
its ``name`` (see :func:`registered_emission`) and ``probspace.HMM`` fits it.
"""

import importlib
import pkgutil

from ._base import Emission, emission_names, registered_emission

__all__ = ["Emission", "emission_names", "registered_emission"]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "_base":
        _mod = importlib.import_module(f"{__name__}.{_module}")
        for _name in getattr(_mod, "__all__", ()):
            globals()[_name] = getattr(_mod, _name)
            __all__.append(_name)
del _module, _mod, _name
__all__.sort()
