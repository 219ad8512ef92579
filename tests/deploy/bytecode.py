"""Adds precompiled bytecode to the deployment zip that ``chalice package`` built.

``make package`` runs ``python -m tests.deploy.bytecode build/package`` after ``chalice
package``, and the package test does the same to its own build. chalice ships sources only, so
without this every cold start compiles every module it imports (docs/performance.md, section 3).

Each ``.py`` in the zip gets ``__pycache__/<name>.cpython-3XX.pyc`` beside it, compiled by this
interpreter in *unchecked-hash* mode: the import system loads it without looking at the source's
modification time or contents. Lambda's task folder is read-only and its files' modification
times are the unzip's, so a timestamp-checked ``.pyc`` would be judged stale and the module
compiled again at every start; a checked-hash one would make every import read and hash its
source. The pairing is safe because a zip is never edited in place: a new deployment is a new
zip, with bytecode compiled from the sources it holds.

The ``.pyc`` format belongs to one Python minor version, so the functions' ``Runtime`` in the
template beside the zip must be this interpreter's (chalice picks it from the same interpreter).
``.pyc`` files already in the zip (a checkout's ``__pycache__`` under ``chalicelib/``) are
dropped and compiled again, so the result depends on the sources only. Running it twice gives the
same zip.

The same step writes the template beside the zip (``sam.json``) without chalice's indentation:
indented, it passes CloudFormation's 1,000,000-byte limit for a template (cfn-lint's E1002) now
that the API has over a hundred routes, whose definitions the template carries.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import marshal
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
# The .pyc header's flags word: bit 0 "hash-based", bit 1 "check the source" (PEP 552).
UNCHECKED_HASH_FLAGS = 0b01


@dataclass
class Compiled:
    """What ``add_bytecode`` did to one zip."""

    sources: int = 0
    compiled: int = 0
    dropped_pyc: int = 0
    not_compiled: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0


def pyc_name(source: str) -> str:
    """The zip entry of a source's bytecode: ``a/b.py`` -> ``a/__pycache__/b.cpython-311.pyc``."""
    return importlib.util.cache_from_source(source, optimization="")


def pyc_bytes(source: bytes, name: str) -> bytes:
    """Unchecked-hash bytecode of ``source``; ``name`` (the path inside the zip) is the code's
    file name until the import system replaces it with where the source really is."""
    code = compile(source, name, "exec", dont_inherit=True)
    header = bytearray(importlib.util.MAGIC_NUMBER)
    header += UNCHECKED_HASH_FLAGS.to_bytes(4, "little")
    header += importlib.util.source_hash(source)
    return bytes(header) + marshal.dumps(code)


def check_runtime(package_dir: Path) -> None:
    """Every function in the template beside the zip runs this interpreter's Python version."""
    template = package_dir / "sam.json"
    if not template.exists():
        return
    resources = json.loads(template.read_text())["Resources"]
    runtimes = {
        r["Properties"]["Runtime"]
        for r in resources.values()
        if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")
        and "Runtime" in r.get("Properties", {})
    }
    if runtimes - {RUNTIME}:
        raise SystemExit(
            f"the template's functions run {sorted(runtimes)}, but this is {RUNTIME}: its "
            "bytecode would be ignored there. Package and compile with the runtime's Python."
        )


def compact_template(package_dir: Path) -> tuple[int, int]:
    """Rewrite ``sam.json`` without indentation; its sizes in bytes before and after."""
    template = package_dir / "sam.json"
    if not template.exists():
        return 0, 0
    text = template.read_text()
    compact = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    template.write_text(compact + "\n")
    return len(text.encode()), len(compact.encode()) + 1


def add_bytecode(archive: Path) -> Compiled:
    """Rewrite ``archive`` with an unchecked-hash ``.pyc`` for each of its ``.py`` files."""
    result = Compiled(bytes_before=archive.stat().st_size)
    partial = archive.with_name(archive.name + ".partial")
    with (
        zipfile.ZipFile(archive) as source,
        zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        entries = source.infolist()
        for entry in entries:
            if entry.filename.endswith(".pyc") or "/__pycache__/" in f"/{entry.filename}":
                result.dropped_pyc += not entry.is_dir()
                continue
            data = source.read(entry)
            target.writestr(entry, data)
            if entry.is_dir() or not entry.filename.endswith(".py"):
                continue
            result.sources += 1
            try:
                compiled = pyc_bytes(data, entry.filename)
            except (SyntaxError, ValueError):
                # Not Python this version can run (a py2 leftover, a template named .py):
                # nothing imports it, or the import fails from source just the same.
                result.not_compiled.append(entry.filename)
                continue
            pyc = zipfile.ZipInfo(pyc_name(entry.filename), date_time=entry.date_time)
            pyc.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            pyc.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(pyc, compiled)
            result.compiled += 1
    os.replace(partial, archive)
    result.bytes_after = archive.stat().st_size
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy.bytecode", description=__doc__)
    parser.add_argument("package_dir", type=Path, help="chalice package's output folder")
    args = parser.parse_args()
    check_runtime(args.package_dir)
    done = add_bytecode(args.package_dir / "deployment.zip")
    print(
        f"bytecode: {done.compiled} of {done.sources} modules compiled ({RUNTIME}, "
        f"unchecked-hash), {done.dropped_pyc} .pyc already in the zip replaced; "
        f"deployment.zip {done.bytes_before / 2**20:.1f} -> {done.bytes_after / 2**20:.1f} MiB"
    )
    for name in done.not_compiled:
        print(f"  not compiled (not valid {RUNTIME}): {name}")
    before, after = compact_template(args.package_dir)
    if before:
        print(f"template: sam.json {before:,} -> {after:,} bytes (indentation removed)")


if __name__ == "__main__":
    main()
