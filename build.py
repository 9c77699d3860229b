"""Build dist/harmony.pyz: one self-contained zipapp made with shiv.

Run it with the Python version and on the architecture of the target host: APSW is a binary
wheel, so the zipapp is only portable to the same platform. Builds are reproducible (fixed
timestamps), so the same sources and wheels give the same file. Needs nothing but Python:
when shiv is not installed, it runs shiv from a throwaway virtualenv of the same Python.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=os.path.join(HERE, "dist", "harmony.pyz"))
    parser.add_argument("--python", default="/usr/bin/env python3", help="shebang interpreter")
    args = parser.parse_args(argv)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with tempfile.TemporaryDirectory() as build_dir:
        env = dict(os.environ, SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
        command = [
            _python_with_shiv(build_dir),
            "-m",
            "shiv",
            "--reproducible",
            "--compressed",
            # Ship compiled bytecode: a service user often cannot write .pyc files into the
            # extraction cache, and then every start would recompile every module.
            "--compile-pyc",
            "-p",
            args.python,
            "-c",
            "harmony",
            "-o",
            args.output,
            "--build-id",
            _build_id(),
            HERE,
        ]
        env["PIP_NO_CACHE_DIR"] = "1"
        env["TMPDIR"] = build_dir
        subprocess.run(command, check=True, env=env)
    print(f"built {args.output}")
    return 0


def _python_with_shiv(build_dir: str) -> str:
    """This Python if it has shiv, else the Python of a new virtualenv with shiv installed."""
    try:
        import shiv  # noqa: F401
    except ImportError:
        venv = os.path.join(build_dir, "shiv-venv")
        print("shiv is not installed; installing it into a temporary virtualenv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        python = os.path.join(venv, "bin", "python")
        subprocess.run([python, "-m", "pip", "install", "--quiet", "shiv>=1.0.6"], check=True)
        return python
    return sys.executable


def _build_id() -> str:
    """The git commit when available, so each build extracts to its own cache directory."""
    try:
        out = subprocess.run(
            ["git", "-C", HERE, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", HERE, "status", "--porcelain"], capture_output=True, text=True
        ).stdout
        return out.stdout.strip()[:12] + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        from harmony import __version__

        return __version__


if __name__ == "__main__":
    sys.exit(main())
