"""A PEP 517 build backend for latch-client, in the standard library only.

pip builds a package in an isolated environment whose build requirements it
downloads; with --no-index (no registry) setuptools' backend cannot be had
there, nor without the `wheel` package. This backend needs nothing: it reads
[project] from pyproject.toml and zips src/latch_client into a pure-Python
wheel (and an sdist), so `pip install --no-index ./sdk/python` works in a
fresh venv.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "latch_client"


def _project() -> dict[str, str]:
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("[project]", 1)[1].split("\n[", 1)[0]
    out = {}
    for key in ("name", "version", "description", "requires-python"):
        mo = re.search(rf'^{re.escape(key)}\s*=\s*"([^"]*)"', section, re.M)
        if mo:
            out[key] = mo.group(1)
    return out


def _metadata(p: dict[str, str]) -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {p['name']}\nVersion: {p['version']}\nSummary: {p.get('description', '')}\n"
        f"Requires-Python: {p.get('requires-python', '>=3.10')}\nLicense: Apache-2.0\n"
        "Description-Content-Type: text/markdown\n\n" + readme
    )


def _files() -> list[tuple[str, str]]:
    src = os.path.join(ROOT, "src", PACKAGE)
    return sorted(
        (os.path.join(src, n), f"{PACKAGE}/{n}")
        for n in os.listdir(src)
        if n.endswith(".py") or n == "py.typed"
    )


def get_requires_for_build_wheel(config_settings=None):  # type: ignore[no-untyped-def]
    return []


def get_requires_for_build_sdist(config_settings=None):  # type: ignore[no-untyped-def]
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):  # type: ignore[no-untyped-def]
    p = _project()
    dist = p["name"].replace("-", "_")
    info = f"{dist}-{p['version']}.dist-info"
    name = f"{dist}-{p['version']}-py3-none-any.whl"
    entries = [(arc, open(path, "rb").read()) for path, arc in _files()]
    entries += [
        (f"{info}/METADATA", _metadata(p).encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: latch_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{info}/top_level.txt", f"{PACKAGE}\n".encode()),
    ]
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries:
            z.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{arc},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return name


def build_sdist(sdist_directory, config_settings=None):  # type: ignore[no-untyped-def]
    p = _project()
    base = f"{p['name'].replace('-', '_')}-{p['version']}"
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ("pyproject.toml", "README.md", "_build/latch_build.py"):
            t.add(os.path.join(ROOT, rel), f"{base}/{rel}")
        for path, arc in _files():
            t.add(path, f"{base}/src/{arc}")
        info = _metadata(p).encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(info)
        t.addfile(ti, io.BytesIO(info))
    return name
