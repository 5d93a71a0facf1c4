"""No bare ``Any`` on the public API (#21 item 10), and a ratchet on the key signatures.

The public API is every module the reference docs render (``::: lmcoverage.x`` in docs/) and
every module a package ``__init__`` re-exports from. In those modules, a public function, a
public method (or ``__init__``/``__call__``) of a public class, and a public class attribute may
not be annotated ``Any`` (nor ``Any | None``, ``Optional[Any]``): a model is a
``PreTrainedModel``, a tokenizer a ``PreTrainedTokenizerBase``, through ``TYPE_CHECKING`` imports.
A value that is genuinely arbitrary (a JSON value, a user verifier's verdict) is ``object`` or
``lmcoverage.io.JSONValue``; ``Any`` inside a container (``dict[str, Any]``) and on ``*args`` /
``**kwargs`` (options forwarded to another function) is allowed. The check reads the source
(AST), so it needs no import of transformers.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

#: "module:qualname(param)" or "module:qualname -> " -> why it stays Any
ALLOWED: dict[str, str] = {}

TYPED = {
    "lmcoverage.engine.table:score_models": {"return": "ScoreTable"},
    "lmcoverage.models.hf:resolve_dtype": {"return": "torch.dtype"},
    "lmcoverage.models.hf:load_tokenizer": {"return": "PreTrainedTokenizerBase"},
    "lmcoverage.tasks.tokenizer:build_tokenizer": {"return": "PreTrainedTokenizerFast"},
    "lmcoverage.experiments.figure1:analyse": {"table": "ScoreTable"},
    "lmcoverage.select.registry:get_selector": {"return": "SelectorInfo"},
    "lmcoverage.train.optimizers:make_optimizer": {"return": "torch.optim.Optimizer"},
}


def _module_file(module: str) -> Path:
    path = SRC.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def public_modules(root: Path = ROOT) -> list[str]:
    """Modules rendered by the reference docs plus those the packages re-export from."""
    found = set()
    for page in (root / "docs").rglob("*.md"):
        found |= set(re.findall(r"^::: *(lmcoverage[\w.]*)", page.read_text(), re.M))
    for init in (root / "src" / "lmcoverage").rglob("__init__.py"):
        for node in ast.walk(ast.parse(init.read_text())):
            if (isinstance(node, ast.ImportFrom) and node.level == 0
                    and (node.module or "").startswith("lmcoverage.")):
                found.add(node.module)
    return sorted(m for m in found if _module_file(m).is_file())


def is_bare_any(annotation: ast.expr | None) -> bool:
    """``Any``, ``typing.Any``, ``"Any"``, ``Any | X`` or ``Optional[Any]``."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return False
    if isinstance(annotation, ast.Name):
        return annotation.id == "Any"
    if isinstance(annotation, ast.Attribute):
        return annotation.attr == "Any"
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return is_bare_any(annotation.left) or is_bare_any(annotation.right)
    if (isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name)
            and annotation.value.id == "Optional"):
        return is_bare_any(annotation.slice)
    return False


def _public(name: str) -> bool:
    return not name.startswith("_") or name in ("__init__", "__call__")


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str) -> Iterator[str]:
    args = fn.args
    for arg in args.posonlyargs + args.args + args.kwonlyargs:
        if is_bare_any(arg.annotation):
            yield f"{qualname}({arg.arg})"
    if is_bare_any(fn.returns):
        yield f"{qualname} -> "


def bare_any(source: str, module: str) -> list[str]:
    """``module:qualname(param)`` / ``module:qualname -> `` of each bare Any in ``source``."""
    out: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _public(node.name):
            out += _signature(node, node.name)
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            for member in node.body:
                if (isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef)
                        and _public(member.name)):
                    out += _signature(member, f"{node.name}.{member.name}")
                elif (isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name)
                      and _public(member.target.id) and is_bare_any(member.annotation)):
                    out.append(f"{node.name}.{member.target.id}")
    return [f"{module}:{found}" for found in out]


def test_public_modules_cover_the_api() -> None:
    modules = public_modules()
    for expected in ("lmcoverage.engine.table", "lmcoverage.metrics.coverage",
                     "lmcoverage.models.hf", "lmcoverage.engine.sampling", "lmcoverage.io"):
        assert expected in modules


def test_detector_finds_bare_any() -> None:
    source = (
        "def f(model: Any, n: int, *a: Any, t: Any | None = None, **k: Any) -> Any: ...\n"
        "def g(x: dict[str, Any], y: 'Any') -> list[Any]: ...\n"
        "def _private(x: Any) -> Any: ...\n"
        "class C:\n"
        "    spec: Any\n"
        "    _hidden: Any\n"
        "    def __init__(self, m: typing.Any) -> None: ...\n"
        "    def _helper(self, m: Any) -> Any: ...\n"
    )
    assert bare_any(source, "m") == ["m:f(model)", "m:f(t)", "m:f -> ", "m:g(y)", "m:C.spec",
                                     "m:C.__init__(m)"]


def test_no_bare_any_on_the_public_api() -> None:
    found = [f for m in public_modules() for f in bare_any(_module_file(m).read_text(), m)]
    unexpected = [f for f in found if f not in ALLOWED]
    assert not unexpected, "annotate these with a real type (TYPE_CHECKING import) or object:\n" + (
        "\n".join(unexpected))
    stale = sorted(set(ALLOWED) - set(found))
    assert not stale, f"typed now: drop from ALLOWED: {stale}"


@pytest.mark.parametrize("target", sorted(TYPED))
def test_public_signature_is_typed(target: str) -> None:
    module, name = target.split(":")
    annotations = inspect.get_annotations(getattr(importlib.import_module(module), name))
    for param, expected in TYPED[target].items():
        assert annotations[param] == expected, (target, param)
