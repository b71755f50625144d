"""The code's shape, as the team guide asks (issue 8, "Modules a newcomer can find"):

- no function in bot/, handlers/ or schedules/ is longer than MAX_LINES lines unless the first
  line of its docstring, or the first comment line of its body, starts with LONG_MARKER and then
  says why (for example `Long because: one table of the flow's steps reads best whole.`);
- no import cycle among the modules of bot/, handlers/ and schedules/ (module-level imports only;
  imports inside functions and under `if TYPE_CHECKING:` are there precisely to break cycles).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "schedules")
MAX_LINES = 60
LONG_MARKER = "Long because"


def _sources() -> dict[str, Path]:
    """{dotted module name: file} for every module of the packages."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _first_comment(source_lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The first comment in the function's body (before or on its first statement), if any."""
    first = node.body[0]
    start = node.lineno
    end = first.end_lineno or first.lineno
    text = "\n".join(source_lines[start - 1:end])
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                return tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return ""


def _has_reason(source_lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    doc = ast.get_docstring(node) or ""
    if doc.strip().startswith(LONG_MARKER):
        return True
    return _first_comment(source_lines, node).startswith(LONG_MARKER)


def long_functions() -> list[str]:
    offenders = []
    for path in _sources().values():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = (node.end_lineno or node.lineno) - start + 1
            if length > MAX_LINES and not _has_reason(lines, node):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return offenders


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module loads: at top level, or inside top-level if/try blocks (except
    `if TYPE_CHECKING:`); not those inside functions or classes."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                found.append(stmt)
            elif isinstance(stmt, ast.If):
                if not _is_type_checking(stmt.test):
                    visit(stmt.body)
                visit(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                for block in (stmt.body, stmt.orelse, stmt.finalbody, *[h.body for h in stmt.handlers]):
                    visit(block)

    visit(tree.body)
    return found


def import_graph() -> dict[str, set[str]]:
    """{module: the package modules it imports when it loads}."""
    modules = _sources()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for stmt in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(stmt, ast.Import):
                targets = [alias.name for alias in stmt.names]
            else:
                base = stmt.module or ""
                if stmt.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (stmt.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import mod` imports the module pkg.mod when there is one.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in stmt.names]
            for target in targets:
                # `import a.b.c` loads a, a.b and a.b.c; the nearest known module is the edge.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def test_no_function_is_long_without_a_reason_at_its_top() -> None:
    offenders = long_functions()
    assert not offenders, (
        f"functions over {MAX_LINES} lines: split them, or start the docstring or first comment with "
        f"'{LONG_MARKER}' and the reason:\n" + "\n".join(offenders))


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (module-level imports):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_what_they_look_for() -> None:
    """The checks themselves work: a known cycle and a known long function are found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "bot.core" in graph["bot.app"]  # `from bot.core import Core` is an edge
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    for head, expected in (("", False), (f'    """{LONG_MARKER}: a table."""\n', True),
                           (f"    # {LONG_MARKER}: a table.\n", True)):
        source = f"def f() -> None:\n{head}{long_body}\n"
        node = ast.parse(source).body[0]
        assert isinstance(node, ast.FunctionDef)
        assert _has_reason(source.splitlines(), node) is expected
