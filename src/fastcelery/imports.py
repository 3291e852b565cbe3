"""Which imports of a project's own modules an update broke (read with ``ast``, never run).

A project tree is a set of file paths plus a way to read them, so the same check reads
the project before an update (its git HEAD) and after it (the working tree).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class Import:
    line: int
    statement: str
    module: str
    #: The imported name for ``from module import name`` (a submodule or an attribute).
    name: str | None = None

    @property
    def target(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module


@dataclass(frozen=True)
class BrokenImport:
    file: str
    line: int
    statement: str
    missing: str


@dataclass
class Tree:
    """The files of a project (POSIX paths relative to its root) and how to read one."""

    files: frozenset[str]
    read: Callable[[str], str | None]
    _names: dict[str, frozenset[str] | None] = field(default_factory=dict)

    @cached_property
    def directories(self) -> frozenset[str]:
        dirs: set[str] = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return frozenset(dirs)

    def module_file(self, module: str) -> str | None:
        """The file of ``module``; ``""`` for a namespace package; ``None`` if absent."""
        base = module.replace(".", "/")
        for candidate in (f"{base}.py", f"{base}/__init__.py"):
            if candidate in self.files:
                return candidate
        return "" if base in self.directories else None

    def top_level_names(self, file: str) -> frozenset[str] | None:
        """Names a module defines; ``None`` when any name may exist (``__getattr__``, ``*``)."""
        if file not in self._names:
            self._names[file] = _defined_names(self.read(file) or "")
        return self._names[file]

    def resolves(self, imported: Import) -> bool:
        found = self.module_file(imported.module)
        if found is None:
            return False
        if imported.name is None or self.module_file(imported.target) is not None:
            return True
        if not found:  # a namespace package has no attributes of its own
            return False
        names = self.top_level_names(found)
        return names is None or imported.name in names


def _defined_names(source: str) -> frozenset[str] | None:
    try:
        module = ast.parse(source)
    except SyntaxError:
        return None
    names: set[str] = set()
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.If | ast.Try):
            return None  # names defined conditionally: do not guess
    return None if "__getattr__" in names else frozenset(names)


def imports_of(file: str, source: str) -> list[Import]:
    """Every import in ``source`` (the module at ``file``), relative ones made absolute."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    # The package a relative import starts from: the file's directory (also for __init__.py).
    package = file.split("/")[:-1]
    lines = source.splitlines()
    found: list[Import] = []
    for node in ast.walk(tree):
        statement = lines[node.lineno - 1].strip() if hasattr(node, "lineno") else ""
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, statement, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 > len(package):
                    continue
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if not module:
                continue
            for alias in node.names:
                name = None if alias.name == "*" else alias.name
                found.append(Import(node.lineno, statement, module, name))
    return found


def broken_imports(before: Tree, after: Tree, files: Iterable[str]) -> list[BrokenImport]:
    """Imports in ``files`` (of ``after``) of the project's own modules that resolved
    before and do not now."""
    local = {path.split("/")[0].removesuffix(".py") for path in before.files | after.files}
    broken = []
    for file in sorted(files):
        if not file.endswith(".py"):
            continue
        for imported in imports_of(file, after.read(file) or ""):
            if imported.module.split(".")[0] not in local:
                continue  # a library, not the project's own code
            if after.resolves(imported) or not before.resolves(imported):
                continue
            broken.append(BrokenImport(file, imported.line, imported.statement, imported.target))
    return broken
