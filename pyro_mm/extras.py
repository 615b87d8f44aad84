"""The optional parts of pyro_mm and the packages they need.

The core — distributions, models, guides, objectives, the method registry, the trainer and the
queries — needs torch, pyro-ppl, numpy and tqdm. Everything else comes with an extra:

==============  ==========================================  ====================================
extra           packages                                    what it enables
==============  ==========================================  ====================================
``data``        scikit-image, matplotlib (with Pillow)      the offline data sets
``metrics``     matplotlib                                  figures, reports, ``pyro-mm reproduce``
``arviz``       arviz-base, arviz-stats, h5netcdf, h5py     the ArviZ export
``lightning``   lightning, tensorboard                      data-parallel training, loggers
``all``         every one of the above
==============  ==========================================  ====================================

:func:`require` imports a package of an extra, or says which ``pip install`` brings it.
"""

from __future__ import annotations

import importlib

__all__ = ["require", "EXTRAS"]

#: extra -> the packages it installs (import names)
EXTRAS = {"data": ("skimage", "matplotlib", "PIL"), "metrics": ("matplotlib",),
          "arviz": ("arviz_base", "arviz_stats", "xarray", "h5netcdf"), "lightning": ("lightning", "tensorboard")}


def require(module: str, extra: str, purpose: str):
    """``importlib.import_module(module)``, or an ``ImportError`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{purpose} needs the package {module.split('.')[0]!r}: pip install -e '.[{extra}]' in the "
                          f"pyro_mm checkout (or pip install 'pyro_mm[{extra}]')") from None
