"""``python -m statevault.demo PHASE --config JSON``: one phase of the demo in a child process."""

import sys

from .run import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
