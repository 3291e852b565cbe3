"""Makes uv find every local Python for the subprocesses that tests start (see tests/support.py)."""

from tests import support

support.expose_pyenv_versions()
