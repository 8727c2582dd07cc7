"""`python -m infoutil ...` runs the installed binary (as `infoutil ...` does)."""
import os
import sys

from ._cli import binary, environment

if __name__ == "__main__":
    exe = binary()
    os.execve(exe, [exe, *sys.argv[1:]], environment())
