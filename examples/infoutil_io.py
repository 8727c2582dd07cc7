"""Moved into the package: python/infoutil/io.py (`from infoutil import io`, or `pip install
infoutil`). This shim keeps `import infoutil_io` working for the scripts in examples/, benches/
and export/ that put examples/ on their path."""
import os
import sys

try:
    from infoutil.io import *  # noqa: F401,F403
    from infoutil.io import DataError, sha256_file  # noqa: F401  (named for readers)
except ImportError:   # a checkout without the wheel installed: the package's source
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    from infoutil.io import *  # noqa: F401,F403
    from infoutil.io import DataError, sha256_file  # noqa: F401
