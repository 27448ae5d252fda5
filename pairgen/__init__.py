"""pairgen: synthesize ranked (positive, negative) image pairs for label-free quality assessment.

A pure library over numpy images and dicts: no Ray, no training code. `pipelines/` composes it into
distributed jobs; `trainer/` reads the shards it writes.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eliq-toolkit")
except PackageNotFoundError:  # running from a source tree that was not pip-installed
    __version__ = "0.0.0+unknown"
