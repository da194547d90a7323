"""Runs every code block of the documentation as a test (Sybil), in the order a reader meets it.

Documents: README.md, docs/*.md, examples/README.md, backends/s3/README.md (listed in
pyproject's ``testpaths``, so ``python -m pytest`` runs them). Per document:

- one namespace: the ```python blocks run in order and see each other's names;
- ```bash blocks run with ``bash -euo pipefail``; variables a block exports are seen by the later
  blocks of the document, Python ones included (``os.environ``);
- everything runs in a fresh temporary directory that looks like a checkout (``examples``,
  ``bench``, ``backends`` are symlinks to the repository's), with this venv's ``bin`` first on
  ``PATH`` (so ``python`` and ``statevault`` are the installed ones), the failover spool inside
  it, and no ``STATEVAULT_*`` variable inherited from the caller's environment;
- S3: a moto server on 127.0.0.1 (the tests' ``MotoS3``) holds the buckets ``bot-state`` and
  ``statevault``; the AWS variables point every S3 client at it (``AWS_ENDPOINT_URL``, dummy
  ``testing`` credentials, ``us-east-1``), so a block written for real S3 runs unchanged;
- ``<!-- skip: next -->`` before a block excludes it (only for blocks that merely sketch, or
  that install the package itself; CI runs those commands another way).

Other fences (```text, ```console, ```json, plain ```) are shown output, never run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parent
#: Repository folders a document may use as if it ran from the repository root.
LINKED = ("examples", "bench", "backends")
#: Buckets that exist on the documents' S3 server.
BUCKETS = ("bot-state", "statevault")
#: Variables of the shell's own bookkeeping, not something a block exported.
SHELL_VARS = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})
BASH_TIMEOUT = 240  # seconds; the slowest block (the demo) takes a few


class BashParser(CodeBlockParser):
    """```bash blocks: run with bash in the document's directory, exports carried forward."""

    language = "bash"

    def evaluate(self, example: Example) -> str | None:
        namespace = example.namespace
        workdir: Path = namespace["__docs_dir__"]
        env_file = workdir / ".sybil-env"
        script = f"{example.parsed}\nenv -0 > {env_file}\n"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=workdir,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=BASH_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            return (
                f"bash block exited with status {result.returncode}\n"
                f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
            )
        exported = dict(
            item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item
        )
        env_file.unlink()
        for name, value in exported.items():
            if name not in SHELL_VARS and os.environ.get(name) != value:
                os.environ[name] = value
        for name in set(os.environ) - set(exported):
            if name.isidentifier():  # bash drops names it cannot hold; keep those
                del os.environ[name]
        return None


def _setup(namespace: dict[str, Any]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="statevault-docs-"))
    for name in LINKED:
        (workdir / name).symlink_to(ROOT / name, target_is_directory=True)
    namespace["__docs_dir__"] = workdir
    namespace["__docs_saved__"] = (os.getcwd(), dict(os.environ))
    for name in [n for n in os.environ if n.startswith("STATEVAULT_")]:
        del os.environ[name]
    os.environ["STATEVAULT_SPOOL_DIR"] = str(workdir / ".spool")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.chdir(workdir)


def _teardown(namespace: dict[str, Any]) -> None:
    cwd, env = namespace["__docs_saved__"]
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    shutil.rmtree(namespace["__docs_dir__"], ignore_errors=True)


@pytest.fixture(scope="session")
def docs_s3() -> Iterator[dict[str, str]]:
    """The documents' S3: a moto server on loopback with their buckets, as AWS variables."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from backends import MotoS3  # the tests' server helper (tests/backends.py)
    finally:
        sys.path.remove(str(ROOT / "tests"))
    server = MotoS3()
    for bucket in BUCKETS:
        server.create_bucket(bucket)
    yield {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    server.stop()


@pytest.fixture
def docs_aws(docs_s3: dict[str, str]) -> None:
    """Point every S3 client of a document's block at the documents' moto server."""
    os.environ.update(docs_s3)


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), BashParser(), SkipParser()],
    filenames=["README.md"],
    patterns=["docs/*.md"],
    path=".",
    setup=_setup,
    teardown=_teardown,
    fixtures=["docs_aws"],
).pytest()
