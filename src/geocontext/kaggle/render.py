"""`geocontext kernels render`: kernels/<name>/ -> build/kernels/<name>/, one self-contained script each.

A Kaggle kernel cannot pip-install this package, so its rendered script carries the core: every file
of the geocontext package as a string, written to a temporary folder put first on sys.path when the
kernel starts, then the entry script's own code. Rendering is deterministic (files sorted, no dates,
no absolute paths), so the same sources give the same bytes, and the header's sha256 names the core
a kernel carries.

kernels/<name>/ holds
  kernel-metadata.json  Kaggle's kernel metadata; "{username}" in any of its strings becomes the
                        Kaggle user name at render time (KAGGLE_USERNAME or --username)
  <code_file>           the entry script: plain Python that imports geocontext; a module-level
                        VERB = "..." names the kit verb it drives, checked before a push
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

PLACEHOLDER = "{username}"
USERNAME_ENV = "KAGGLE_USERNAME"
METADATA = "kernel-metadata.json"
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{3,49}$")
# Fields the kit insists on: each kernel states its privacy, accelerator and internet access
# deliberately instead of inheriting the CLI's defaults (private, no GPU, internet on).
_REQUIRED = {"id": str, "title": str, "code_file": str, "language": str, "kernel_type": str,
             "is_private": bool, "enable_gpu": bool, "enable_internet": bool,
             "competition_sources": list, "kernel_sources": list, "dataset_sources": list}
_SKIPPED = ("__pycache__", ".pyc", ".pyo", "~")
_NOT_SHIPPED = ("bench",)  # subpackages no kernel runs: the benchmarks stay in the checkout


class RenderError(DataError):
    """A kernel folder or the core cannot be rendered into a kernel script."""


@dataclass(frozen=True)
class Kernel:
    name: str
    folder: Path
    metadata: dict
    entry: Path
    verb: str | None  # the entry script's VERB, when it declares one

    @property
    def slug(self) -> str:
        return self.metadata["id"].split("/", 1)[1]


def slugify(title: str) -> str:
    """Kaggle's kernel slug for a title: lower case, runs of other characters as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def load_kernel(folder: str | Path) -> Kernel:
    """Read and check kernels/<name>/: metadata fields, id and title agreeing, the entry script."""
    folder = Path(folder)
    path = folder / METADATA
    if not path.is_file():
        raise RenderError(f"{folder}: no {METADATA} (a kernel folder holds its entry script and {METADATA})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RenderError(f"{path}: not valid JSON ({exc})") from exc
    for key, kind in _REQUIRED.items():
        if not isinstance(meta.get(key), kind):
            raise RenderError(f"{path}: field {key!r} must be a {kind.__name__}, got {meta.get(key)!r}")
    owner, _, slug = meta["id"].partition("/")
    if owner != PLACEHOLDER or not _SLUG.match(slug):
        raise RenderError(f"{path}: id must be '{PLACEHOLDER}/<slug>' (slug: 4-50 lower-case letters, digits,"
                          f" dashes), got {meta['id']!r}")
    if slugify(meta["title"]) != slug:
        raise RenderError(f"{path}: title {meta['title']!r} gives the slug {slugify(meta['title'])!r}, not {slug!r};"
                          f" Kaggle derives a kernel's slug from its title, so they must agree")
    if (meta["language"], meta["kernel_type"]) != ("python", "script"):
        raise RenderError(f"{path}: only language 'python' and kernel_type 'script' are rendered")
    for source in meta["kernel_sources"] + meta["dataset_sources"]:
        if not isinstance(source, str) or source.count("/") != 1:
            raise RenderError(f"{path}: source {source!r} must be 'owner/slug'")
    entry = folder / meta["code_file"]
    if not entry.is_file() or entry.suffix != ".py" or entry.parent != folder:
        raise RenderError(f"{path}: code_file {meta['code_file']!r} must be a .py file in {folder}")
    return Kernel(folder.name, folder, meta, entry, _declared_verb(entry))


def discover(kernels_dir: str | Path) -> list[Kernel]:
    """Every kernels/<name>/ holding a kernel-metadata.json, by name."""
    kernels_dir = Path(kernels_dir)
    if not kernels_dir.is_dir():
        raise RenderError(f"{kernels_dir}: no kernels folder")
    return [load_kernel(p.parent) for p in sorted(kernels_dir.glob(f"*/{METADATA}"))]


def _declared_verb(entry: Path) -> str | None:
    tree = _parse(entry)
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["VERB"]:
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
            raise RenderError(f"{entry}, line {node.lineno}: VERB must be a string literal")
    return None


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise RenderError(f"{path}, line {exc.lineno}: {exc.msg}") from exc


def username_from(given: str | None = None) -> str | None:
    """The Kaggle user name kernels and datasets are published under: --username, else $KAGGLE_USERNAME.

    Only the name is ever read; keys and tokens stay with the Kaggle CLI."""
    name = (given or os.environ.get(USERNAME_ENV, "")).strip()
    if not name:
        return None
    if not _USERNAME.match(name):
        raise RenderError(f"Kaggle user name {name!r} is not valid (letters, digits, '-' or '_')")
    return name


def fill_username(value, username: str | None):
    """`value` (parsed JSON) with the placeholder replaced in every string; unchanged without a name."""
    if username is None:
        return value
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, username)
    if isinstance(value, list):
        return [fill_username(v, username) for v in value]
    if isinstance(value, dict):
        return {k: fill_username(v, username) for k, v in value.items()}
    return value


def dump_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def core_files(package_dir: str | Path) -> list[tuple[str, str]]:
    """(path under the package's parent, text) for every file of the package, sorted by path."""
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise RenderError(f"{package_dir}: not a Python package (no __init__.py)")
    files = []
    for path in sorted(package_dir.rglob("*")):
        rel = path.relative_to(package_dir.parent)
        if not path.is_file() or any(p.startswith(".") or p.endswith(_SKIPPED) for p in rel.parts):
            continue  # caches, editor and OS leftovers
        if len(rel.parts) > 2 and rel.parts[1] in _NOT_SHIPPED:
            continue
        try:
            files.append((rel.as_posix(), path.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            raise RenderError(f"{path}: only text files can be vendored into a kernel ({exc.reason})") from exc
    return files


def core_digest(files: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for rel, text in files:
        digest.update(rel.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def string_literal(text: str) -> str:
    """`text` as a triple-quoted literal that reads almost like the source it holds."""
    body = text.replace("\\", "\\\\").replace("'''", "\\'\\'\\'")
    if body.endswith("'"):
        body = body[:-1] + "\\'"
    literal = f"'''{body}'''"
    if ast.literal_eval(literal) != text:  # e.g. a stray carriage return; better no kernel than a wrong one
        raise RenderError("a vendored file does not survive quoting; check it for control characters")
    return literal


_BOOTSTRAP = '''
def _install_geocontext_core():
    """Write the vendored core to a temporary folder (once per core) and put it first on sys.path."""
    import os, shutil, sys, tempfile
    from pathlib import Path

    base = Path(os.environ.get("GEOCONTEXT_VENDOR_DIR") or tempfile.gettempdir())
    root = base / f"geocontext-core-{_CORE_SHA256[:16]}"
    if not (root / ".complete").is_file():
        tmp = base / f".{root.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        for rel, text in _CORE.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")
        (tmp / ".complete").write_text(_CORE_SHA256)
        try:
            tmp.rename(root)
        except OSError:  # another process got there first, or a broken leftover is in the way
            root = root if (root / ".complete").is_file() else tmp
    for name in [m for m in sys.modules if m == "geocontext" or m.startswith("geocontext.")]:
        del sys.modules[name]  # a notebook session may hold another copy
    sys.path.insert(0, str(root))


_install_geocontext_core()
del _install_geocontext_core, _CORE
'''


def _split_entry(entry: Path) -> tuple[str, str]:
    """The entry script cut after its docstring and __future__ imports, where the core goes in."""
    text = entry.read_text(encoding="utf-8")
    tree = _parse(entry)
    end = 0
    for i, node in enumerate(tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, str)
        if docstring or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            end = node.end_lineno
        else:
            break
    lines = text.splitlines(keepends=True)
    return "".join(lines[:end]), "".join(lines[end:])


def render_script(kernel: Kernel, files: list[tuple[str, str]], source_label: str) -> str:
    digest = core_digest(files)
    head, body = _split_entry(kernel.entry)
    entry_label = f"kernels/{kernel.name}/{kernel.entry.name}"
    parts = [
        "#!/usr/bin/env python3\n",
        f"# geocontext kernel {kernel.name!r}, rendered by `geocontext kernels render` (make kernels) from\n",
        f"# {entry_label} and the geocontext core ({source_label}, {len(files)} files, sha256 {digest[:16]}).\n",
        "# Do not edit this file: edit those sources and render again.\n",
        head,
        f"\n# ---- vendored geocontext core: {len(files)} files, installed before the kernel's code runs ----\n",
        f"_CORE_SHA256 = {digest!r}\n",
        "_CORE = {\n",
        *(f"{rel!r}: {string_literal(text)},\n" for rel, text in files),
        "}\n",
        _BOOTSTRAP,
        f"\n# ---- the kernel's code: {entry_label} ----\n",
        body,
    ]
    script = "".join(parts)
    try:
        compile(script, entry_label, "exec")
    except SyntaxError as exc:
        raise RenderError(f"{entry_label}: the rendered script does not compile (line {exc.lineno}: {exc.msg})") from exc
    return script


def render(kernel: Kernel, out_dir: str | Path, username: str | None, package_dir: str | Path) -> Path:
    """Write out_dir/<name>/<code_file> and its kernel-metadata.json; return that folder."""
    files = core_files(package_dir)
    script = render_script(kernel, files, f"{Path(package_dir).parent.name}/{Path(package_dir).name}")
    target = Path(out_dir) / kernel.name
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.iterdir():  # a renamed code_file must not linger and be pushed by hand
        if stale.is_file() and stale.name not in (kernel.entry.name, METADATA):
            stale.unlink()
    (target / kernel.entry.name).write_text(script, encoding="utf-8")
    (target / METADATA).write_text(dump_json(fill_username(kernel.metadata, username)), encoding="utf-8")
    return target


def package_dir() -> Path:
    """The core that renders is the core that ships: this package's own folder."""
    return Path(__file__).resolve().parents[1]


def render_all(kernels_dir: str | Path, out_dir: str | Path, username: str | None, names: list[str] | None = None,
               package: str | Path | None = None) -> list[Path]:
    kernels = discover(kernels_dir)
    known = [k.name for k in kernels]
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise RenderError(f"{kernels_dir}: no kernel named {', '.join(unknown)} (kernels: {', '.join(known)})")
    return [render(k, out_dir, username, package or package_dir()) for k in kernels if not names or k.name in names]
