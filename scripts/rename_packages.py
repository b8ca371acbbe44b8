#!/usr/bin/env python3
"""Moves the top-level folders' code into namespaced import packages and rewrites every use.

Issue 12: ``pip install v6flow[all]`` used to put bare ``server``, ``node``, ``flows``,
``blocks`` and ``ui`` packages into site-packages. Each of these folders is now one
distribution with ONE namespaced package nested inside it::

    server/  -> server/v6flow_server/   (import v6flow_server)
    node/    -> node/v6flow_node/       (import v6flow_node)
    blocks/  -> blocks/prefect_v6flow/  (import prefect_v6flow)
    flows/   -> flows/v6flow_flows/     (import v6flow_flows; flows/v6flow_flows/summary/...)
    ui/      -> ui/v6flow_ui/           (the web UI's static files, package data)

and ``v6flow/demo.py`` and ``v6flow/local_federation.py`` move into ``v6flow_flows`` (the
library must not import the flows).

What it does, in this order (idempotent: a second run changes nothing):

1. **Moves** every file still at an old place into its package (``git mv`` for tracked files,
   so history follows; a plain rename for untracked ones). Files that belong to the
   distribution, not the package, stay: ``pyproject.toml``, ``README.md`` and ``ui/vendor.sh``.
   Use it after merging a branch that added ``server/api/routes/foo.py``: the file moves to
   ``server/v6flow_server/api/routes/foo.py``.
2. **Rewrites references** in every text file of the checkout (tracked and untracked, not
   ignored): ``.py`` through the tokenizer (imports; names bound by ``import server.x``; and
   inside strings and comments the text rules below), and ``.md``, ``.toml``, ``.yaml``,
   ``.ini``, ``.sh``, ``.mako``, ``.R``, ``Dockerfile`` and shebang scripts with the text
   rules:

   - ``from server import x`` → ``from v6flow_server import x``;
   - ``server.<child>`` → ``v6flow_server.<child>`` where ``<child>`` is a module or subpackage
     that exists in the package (so ``node.yaml``, ``server.log`` or ``self.node.name`` stay);
   - ``-m blocks`` → ``-m prefect_v6flow``, ``:mod:`blocks``` → ``:mod:`prefect_v6flow```;
   - paths ``flows/summary/flow.py`` → ``flows/v6flow_flows/summary/flow.py`` where the first
     component after the folder exists in the package (``tests/node/...`` and URL paths such as
     ``/api/node/1`` stay: a path preceded by ``/`` is left alone unless after ``./``, ``PWD/``,
     ``ROOT/``, ``}/`` or ``)/``); ``flows/<method>`` and ``flows/*`` get the package too
     (not ``flows/<id>``);
   - Python path joins ``"flows" / "summary"`` → ``"flows" / "v6flow_flows" / "summary"``;
   - ``v6flow.demo`` / ``v6flow.local_federation`` → ``v6flow_flows.demo`` / ``...``, and
     ``from v6flow import demo, images`` is split in two imports.
3. Sorts the imports it touched (``ruff check --select I --fix`` on the rewritten Python files)
   when ruff is on PATH: ``v6flow_server`` sorts elsewhere than ``server`` did.

What it cannot do (fix by hand, then re-run ``--check``):

- dynamic names: ``import_module(f"flows.{name}.flow")``, ``"flows." + name``, a bare
  ``"server"`` string meant as a module, ``Path(__file__).parent.parent / "ui"``, shell
  paths built from variables (``flows/$m``);
- ``import blocks`` followed by attribute use in Markdown (Python files are handled);
- a local variable named like an old package (``node``) in a file that also does
  ``import node.x``: its attribute uses are rewritten too (the diff shows it);
- packaging metadata: pyproject ``include``/``package-data``/entry points and the image
  builds' staging lists are written by hand (they are already right on this branch).

Usage (from anywhere; acts on the checkout this script belongs to)::

    python scripts/rename_packages.py           # move and rewrite, print what changed
    python scripts/rename_packages.py --check   # change nothing; exit 1 if anything would
    python scripts/rename_packages.py --no-ruff # skip the import sorting step

A file containing the marker ``rename-packages: skip`` is never rewritten.
"""

from __future__ import annotations

import argparse
import io
import keyword
import re
import shutil
import subprocess
import sys
import tokenize
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Old import name (= the folder, which stays) → new, namespaced import name inside it.
PACKAGES: dict[str, str] = {
    "server": "v6flow_server",
    "node": "v6flow_node",
    "blocks": "prefect_v6flow",
    "flows": "v6flow_flows",
    "ui": "v6flow_ui",
}
#: Files that belong to the distribution's folder, not to its package: they never move.
DIST_FILES = {"pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "setup.cfg"}
KEEP_IN_FOLDER: dict[str, set[str]] = {"ui": {"vendor.sh"}}
#: Library modules that moved into another package (old dotted name → new dotted name).
MODULE_MOVES: dict[str, str] = {
    "v6flow.demo": "v6flow_flows.demo",
    "v6flow.local_federation": "v6flow_flows.local_federation",
}
TEXT_SUFFIXES = {".py", ".pyi", ".md", ".rst", ".toml", ".yaml", ".yml", ".ini", ".cfg", ".sh",
                 ".mako", ".R", ".r"}
TEXT_NAMES = {"Dockerfile", ".importlinter"}
SKIP_MARKER = "rename-packages: " + "skip"  # split so that this file is not skipped by name
SELF = Path(__file__).resolve()


# -- 1. moves -----------------------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def _checkout_files(under: str | None = None) -> list[str]:
    """Tracked and untracked (not ignored) files, relative to the root, that exist."""
    args = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    if under:
        args += ["--", under]
    names = sorted({name for name in _git(*args).split("\0") if name})
    return [name for name in names if (ROOT / name).is_file()]


def _tracked(path: str) -> bool:
    return bool(_git("ls-files", "--", path).strip())


def planned_moves() -> list[tuple[str, str]]:
    """(source, destination) of every file not yet in its new place."""
    moves: list[tuple[str, str]] = []
    for folder, package in PACKAGES.items():
        keep = DIST_FILES | KEEP_IN_FOLDER.get(folder, set())
        for name in _checkout_files(folder + "/"):
            rel = name[len(folder) + 1:]
            if rel.startswith(package + "/") or rel in keep:
                continue
            moves.append((name, f"{folder}/{package}/{rel}"))
    for old, new in MODULE_MOVES.items():
        source = old.replace(".", "/") + ".py"
        new_package = new.split(".")[0]
        folder = next(f for f, p in PACKAGES.items() if p == new_package)
        dest = f"{folder}/{new.replace('.', '/')}.py"
        if (ROOT / source).is_file():
            moves.append((source, dest))
    return moves


def apply_moves(moves: Iterable[tuple[str, str]], say: Callable[[str], None]) -> None:
    """Move files; refuse to overwrite (both places exist after a merge: resolve by hand)."""
    for source, dest in moves:
        if (ROOT / dest).exists():
            raise SystemExit(f"both {source} and {dest} exist: merge them by hand, then re-run")
        (ROOT / dest).parent.mkdir(parents=True, exist_ok=True)
        if _tracked(source):
            _git("mv", source, dest)
        else:
            (ROOT / source).rename(ROOT / dest)
        say(f"moved {source} -> {dest}")
    for folder in PACKAGES:  # folders emptied by the moves (bytecode of moved modules too)
        for directory in sorted((ROOT / folder).rglob("*"), reverse=True):
            if not directory.is_dir():
                continue
            if directory.name == "__pycache__" and not any(directory.parent.glob("*.py")):
                shutil.rmtree(directory)
            elif not any(directory.iterdir()):
                directory.rmdir()


# -- 2. rewrite rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class Children:
    """What exists inside one new package: for dotted names and for paths."""

    modules: frozenset[str]  # importable submodules and subpackages (dotted references)
    entries: frozenset[str]  # file and folder names (path references)


def package_children() -> dict[str, Children]:
    """Children of each new package, read from the checkout after the moves."""
    found: dict[str, Children] = {}
    for folder, package in PACKAGES.items():
        base = ROOT / folder / package
        modules: set[str] = set()
        entries: set[str] = set()
        if base.is_dir():
            for item in base.iterdir():
                if item.name == "__pycache__" or item.name.endswith(".egg-info"):
                    continue
                entries.add(item.name)
                if item.suffix == ".py" and item.stem != "__init__":
                    modules.add(item.stem)
                elif item.is_dir() and item.name.isidentifier() and any(item.glob("*.py")):
                    modules.add(item.name)
        modules = {m for m in modules if not keyword.iskeyword(m)}
        found[folder] = Children(frozenset(modules), frozenset(entries))
    return found


def _alternation(names: Iterable[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=lambda n: (-len(n), n)))


class Rules:
    """The text rules, compiled once for the children found in the checkout."""

    def __init__(self, children: dict[str, Children]) -> None:
        self.children = children
        self.text: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = []
        for old, new in PACKAGES.items():
            kids = children[old]
            self.text.append((re.compile(rf"\bfrom(\s+){old}(\s+)import\b"),
                              lambda m, new=new: f"from{m[1]}{new}{m[2]}import"))
            # a bare name in an import list inside text: python -c "import prefect, blocks"
            self.text.append((re.compile(rf"(\bimport\s+(?:[\w.]+\s*,\s*)+){old}(?![\w.\-/])"),
                              lambda m, new=new: f"{m[1]}{new}"))
            self.text.append((re.compile(rf"(\bimport\s+){old}(?=\s*,)"),
                              lambda m, new=new: f"{m[1]}{new}"))
            self.text.append((re.compile(rf"""((?:^|[;"'])\s*(?:>>>\s+)?import\s+){old}"""
                                         rf"(?![\w.\-/])", re.MULTILINE),
                              lambda m, new=new: f"{m[1]}{new}"))
            self.text.append((re.compile(rf"(?<![\w.\-])-m(\s+){old}(?![\w.\-])"),
                              lambda m, new=new: f"-m{m[1]}{new}"))
            self.text.append((re.compile(rf"(:(?:mod|func|class|meth|attr|data):`~?){old}`"),
                              lambda m, new=new: f"{m[1]}{new}`"))
            if kids.modules:
                self.text.append((
                    re.compile(rf"(?<![\w.\-/@$]){old}\.({_alternation(kids.modules)})"
                               rf"(?![\w\-])"),
                    lambda m, new=new: f"{new}.{m[1]}"))
            path_before = r"(?:(?<=\./)|(?<=PWD/)|(?<=ROOT/)|(?<=\}/)|(?<=\)/)|(?<![\w.\-/]))"
            if kids.entries:
                self.text.append((
                    re.compile(rf"{path_before}{old}/({_alternation(kids.entries)})"
                               rf"(?![\w.\-]*[\w\-])"),
                    lambda m, old=old, new=new: f"{old}/{new}/{m[1]}"))
            # a placeholder of a folder inside (``flows/<method>/``), not a URL's
            # (``GET flows/<id>`` of the Prefect API)
            self.text.append((re.compile(rf"{path_before}{old}/(?=<method>|\*)"),
                              lambda _m, old=old, new=new: f"{old}/{new}/"))
        for old_mod, new_mod in MODULE_MOVES.items():
            # (not the demo image's label key ``v6flow.demo.source_hash``: a label, no module)
            self.text.append((re.compile(rf"(?<![\w.\-/]){re.escape(old_mod)}(?![\w\-])"
                                         r"(?!\.source_hash)"),
                              lambda _m, new_mod=new_mod: new_mod))
            old_path, new_path = (old_mod.replace(".", "/") + ".py",
                                  self._module_path(new_mod))
            self.text.append((re.compile(rf"(?<![\w.\-/]){re.escape(old_path)}"),
                              lambda _m, new_path=new_path: new_path))
        # Python path joins: "flows" / "summary"
        self.joins: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = []
        for old, new in PACKAGES.items():
            if self.children[old].entries:
                self.joins.append((
                    re.compile(rf"""(["']){old}\1(\s*/\s*)(["'])"""
                               rf"({_alternation(self.children[old].entries)})\3"),
                    lambda m, old=old, new=new: (f"{m[1]}{old}{m[1]}{m[2]}{m[3]}{new}{m[3]}"
                                                 f"{m[2]}{m[3]}{m[4]}{m[3]}")))

    @staticmethod
    def _module_path(dotted: str) -> str:
        package = dotted.split(".")[0]
        folder = next(f for f, p in PACKAGES.items() if p == package)
        return f"{folder}/{dotted.replace('.', '/')}.py"

    def apply_text(self, text: str) -> str:
        for pattern, repl in self.text:
            text = pattern.sub(repl, text)
        return text

    def apply_joins(self, text: str) -> str:
        for pattern, repl in self.joins:
            text = pattern.sub(repl, text)
        return text


_FSTRING_FIELD = re.compile(r"(\{\{|\}\}|\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})")
_STRING_PREFIX = re.compile(r"^([A-Za-z]*)")


def _rewrite_string_token(token: str, rules: Rules) -> str:
    prefix = _STRING_PREFIX.match(token)
    assert prefix is not None
    if "f" not in prefix[1].lower():
        return rules.apply_text(token)
    parts = _FSTRING_FIELD.split(token)  # odd indexes: replacement fields, left alone
    return "".join(part if i % 2 else rules.apply_text(part) for i, part in enumerate(parts))


_MOVED_FROM_V6FLOW = {old.split(".", 1)[1]: new for old, new in MODULE_MOVES.items()}
_FROM_V6FLOW = re.compile(r"^(?P<indent>[ \t]*)from v6flow import (?P<names>[\w, ]+?)"
                          r"(?P<tail>[ \t]*(?:#.*)?)$", re.MULTILINE)


def _split_moved_imports(text: str) -> str:
    """``from v6flow import demo, images`` → ``from v6flow import images`` + moved ones."""

    def repl(m: re.Match[str]) -> str:
        names = [n.strip() for n in m["names"].split(",") if n.strip()]
        moved = [n for n in names if n.split(" as ")[0] in _MOVED_FROM_V6FLOW]
        if not moved:
            return m[0]
        kept = [n for n in names if n not in moved]
        lines = [f"{m['indent']}from v6flow import {', '.join(kept)}{m['tail']}"] if kept else []
        for name in moved:
            module = _MOVED_FROM_V6FLOW[name.split(" as ")[0]]
            package, leaf = module.rsplit(".", 1)
            alias = name.split(" as ")[1] if " as " in name else None
            lines.append(f"{m['indent']}from {package} import {leaf}"
                         + (f" as {alias}" if alias else ""))
        return "\n".join(lines)

    return _FROM_V6FLOW.sub(repl, text)


def rewrite_python(source: str, rules: Rules) -> str:
    """Rewrite one Python module: imports, bound names, then strings and comments."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(pos: tuple[int, int]) -> int:
        return starts[pos[0] - 1] + pos[1]

    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    edits: dict[int, tuple[int, str]] = {}  # start offset → (end offset, new text)

    def edit(tok: tokenize.TokenInfo, new: str) -> None:
        edits[offset(tok.start)] = (offset(tok.end), new)

    significant = [t for t in tokens if t.type not in (tokenize.NL, tokenize.COMMENT)]
    starters = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
    bound: set[str] = set()
    for i, tok in enumerate(significant):
        prev = significant[i - 1] if i else None
        at_start = prev is None or prev.type in starters or (
            prev.type == tokenize.OP and prev.string in (";", ":"))
        if not (at_start and tok.type == tokenize.NAME and tok.string in ("from", "import")):
            continue
        if tok.string == "from":
            head = significant[i + 1]
            if head.type == tokenize.NAME and head.string in PACKAGES:
                edit(head, PACKAGES[head.string])
            continue
        j, expect = i + 1, True
        while significant[j].type not in (tokenize.NEWLINE, tokenize.ENDMARKER) and not (
                significant[j].type == tokenize.OP and significant[j].string == ";"):
            cur = significant[j]
            if expect and cur.type == tokenize.NAME:
                if cur.string in PACKAGES:
                    edit(cur, PACKAGES[cur.string])
                    k = j + 1
                    while significant[k].type == tokenize.OP and significant[k].string == ".":
                        k += 2
                    if not (significant[k].type == tokenize.NAME and significant[k].string == "as"):
                        bound.add(cur.string)
                expect = False
            elif cur.type == tokenize.OP and cur.string == ",":
                expect = True
            j += 1
    if bound:
        for i, tok in enumerate(significant[1:-1], start=1):
            if tok.type != tokenize.NAME or tok.string not in bound or offset(tok.start) in edits:
                continue
            before, after = significant[i - 1], significant[i + 1]
            if after.type == tokenize.OP and after.string == "." and not (
                    before.type == tokenize.OP and before.string == "."):
                edit(tok, PACKAGES[tok.string])
    # argument lists: [..., "-m", "blocks"] runs the old package
    for i, tok in enumerate(significant[:-2]):
        comma, arg = significant[i + 1], significant[i + 2]
        if (tok.type == tokenize.STRING and tok.string[1:-1] == "-m"
                and comma.type == tokenize.OP and comma.string == ","
                and arg.type == tokenize.STRING and arg.string[1:-1] in PACKAGES
                and arg.string[0] == arg.string[-1] and arg.string[0] in "'\""):
            edit(arg, f"{arg.string[0]}{PACKAGES[arg.string[1:-1]]}{arg.string[0]}")
    fstring_middle = getattr(tokenize, "FSTRING_MIDDLE", None)
    for tok in tokens:
        if tok.type == tokenize.STRING:
            new = _rewrite_string_token(tok.string, rules)
        elif tok.type == tokenize.COMMENT or (fstring_middle and tok.type == fstring_middle):
            new = rules.apply_text(tok.string)
        else:
            continue
        if new != tok.string:
            edit(tok, new)
    out: list[str] = []
    pos = 0
    for start in sorted(edits):
        end, new = edits[start]
        out.append(source[pos:start])
        out.append(new)
        pos = end
    out.append(source[pos:])
    text = rules.apply_joins("".join(out))
    return _split_moved_imports(_rewrite_moved_module_imports(text))


_MOVED_IMPORT = {
    old: re.compile(rf"(?m)^(?P<indent>[ \t]*)from {re.escape(old)} import")
    for old in MODULE_MOVES
}


def _rewrite_moved_module_imports(text: str) -> str:
    for old, pattern in _MOVED_IMPORT.items():
        text = pattern.sub(lambda m, old=old: f"{m['indent']}from {MODULE_MOVES[old]} import",
                           text)
    return text


def _is_text_target(path: Path) -> bool:
    if path.resolve() == SELF:
        return False
    if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
        return True
    if path.suffix == "" and path.stat().st_size < 1_000_000:
        with path.open("rb") as handle:
            return handle.read(2) == b"#!"
    return False


def rewrite_file(path: Path, rules: Rules) -> str | None:
    """The new text of ``path`` (None when unchanged, skipped or not text)."""
    if not _is_text_target(path):
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    if SKIP_MARKER in text:
        return None
    if path.suffix in (".py", ".pyi"):
        try:
            new = rewrite_python(text, rules)
        except (tokenize.TokenError, SyntaxError, IndexError) as exc:
            print(f"warning: {path.relative_to(ROOT)} does not tokenize ({exc}); text rules "
                  "only", file=sys.stderr)
            new = rules.apply_joins(rules.apply_text(text))
    else:
        new = rules.apply_text(text)
    return None if new == text else new


# -- 3. driver ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a move or a rewrite is pending")
    parser.add_argument("--no-ruff", action="store_true", help="do not sort imports with ruff")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        if not args.quiet:
            print(message)

    moves = planned_moves()
    if args.check:
        for source, dest in moves:
            print(f"would move {source} -> {dest}")
    else:
        apply_moves(moves, say)
    # In --check mode the children are those the moves would produce.
    rules = Rules(_children_after(moves) if args.check else package_children())
    changed: list[Path] = []
    for name in _checkout_files():
        path = ROOT / name
        new = rewrite_file(path, rules)
        if new is None:
            continue
        changed.append(path)
        if args.check:
            print(f"would rewrite {name}")
        else:
            path.write_text(new, encoding="utf-8")
            say(f"rewrote {name}")
    python_changed = [str(p) for p in changed if p.suffix == ".py"]
    if python_changed and not args.check and not args.no_ruff:
        ruff = shutil.which("ruff")
        if ruff is None:
            print("ruff is not on PATH: sort the imports with `ruff check --select I --fix .`",
                  file=sys.stderr)
        else:
            subprocess.run([ruff, "check", "--quiet", "--select", "I", "--fix",
                            "--exit-zero", *python_changed], cwd=ROOT, check=True)
    verb = "pending" if args.check else "done"
    print(f"rename_packages: {len(moves)} moves, {len(changed)} rewrites {verb}")
    return 1 if args.check and (moves or changed) else 0


def _children_after(moves: list[tuple[str, str]]) -> dict[str, Children]:
    """Children as they will be once ``moves`` are done (for ``--check`` before moving)."""
    found = package_children()
    extra: dict[str, tuple[set[str], set[str]]] = {f: (set(), set()) for f in PACKAGES}
    for _, dest in moves:
        folder, _package, *rest = dest.split("/")
        if not rest:
            continue
        modules, entries = extra[folder]
        entries.add(rest[0])
        if len(rest) == 1 and rest[0].endswith(".py") and rest[0] != "__init__.py":
            modules.add(rest[0][:-3])
        elif len(rest) > 1 and rest[0].isidentifier() and rest[-1].endswith(".py"):
            modules.add(rest[0])
    return {f: Children(found[f].modules | extra[f][0], found[f].entries | extra[f][1])
            for f in PACKAGES}


if __name__ == "__main__":
    sys.exit(main())
