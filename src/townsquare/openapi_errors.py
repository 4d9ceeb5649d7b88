"""Which `AppError`s a route can answer, found in its code rather than written down.

A route's errors are the `AppError` subclasses referenced by the code that runs for it: the
endpoint, every dependency FastAPI resolves for it (guards included), the methods of its
route class that wrap the handler (the transaction's 503), and, transitively, the functions,
methods and classes of the `townsquare` package those reach. "Referenced" is read from the
source with `ast`: `raise X(...)`, `raise errors.X from exc`, `{constraint: X}` handed to
`flush_or_conflict`, `error = X(); raise error` all name the class. Names caught
(`except X`) or tested (`isinstance(e, X)`) are not raised and are left out.

Names resolve the way Python does for the function: its closure, then its module's globals.
A call through an object whose class cannot be known from the source alone
(`limiter.consume(...)`, `self.assign(...)`) follows the methods of that name on the
classes in the function's reach: those it names (constructs, annotates its parameters with)
and the class the method belongs to. The result over-approximates: an error listed might
never be raised on some path, but an error the code raises is not left out.
"""

from __future__ import annotations

import ast
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fastapi import routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from townsquare.errors import AppError

PACKAGE = "townsquare"
# How many calls deep from a route's entry points the walk follows. Service code sits a few
# calls below the router (router, service, helper, `flush_or_conflict`); the bound keeps a
# stray name from pulling in half the package.
MAX_DEPTH = 12
# The document's own machinery is not part of any route.
_SKIPPED_MODULES = ("townsquare.openapi", "townsquare.openapi_errors")


def _in_package(obj: object) -> bool:
    module = getattr(obj, "__module__", None)
    return isinstance(module, str) and _module_in_package(module)


@cache
def _module_in_package(module: str) -> bool:
    in_package = any(module == name or module.startswith(name + ".") for name in _followed)
    return in_package and not module.startswith(_SKIPPED_MODULES)


_followed = {PACKAGE}


def follow_package(name: str) -> None:
    """Also follow calls into the modules of `name` (an app built from Townsquare's parts,
    such as a test's)."""
    _followed.add(name)
    for cached in (_module_in_package, _facts, _successors):
        cached.cache_clear()


def _is_error_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, AppError)


@dataclass(frozen=True)
class _Facts:
    """What one function's source names: errors, functions, classes and attribute names."""

    errors: frozenset[type[AppError]]
    functions: tuple[Callable[..., Any], ...]
    classes: tuple[type, ...]
    attributes: frozenset[str]


@dataclass
class _Reach:
    errors: set[type[AppError]] = field(default_factory=set)
    functions: list[Callable[..., Any]] = field(default_factory=list)
    classes: list[type] = field(default_factory=list)
    attributes: set[str] = field(default_factory=set)

    def add_object(self, obj: object) -> None:
        """File a resolved name under what it is; anything outside the package is ignored."""
        if _is_error_class(obj):
            assert isinstance(obj, type)
            self.errors.add(obj)
        elif isinstance(obj, (staticmethod, classmethod, types.MethodType)):
            self.add_object(obj.__func__)
        elif inspect.isfunction(obj):
            if _in_package(obj):
                self.functions.append(obj)
        elif isinstance(obj, type):
            if _in_package(obj):
                self.classes.append(obj)
        elif isinstance(obj, property):
            for accessor in (obj.fget, obj.fset):
                if accessor is not None:
                    self.add_object(accessor)
        elif _is_typing_form(obj):
            for part in _typing_parts(obj):
                self.add_object(part)
        elif _in_package(type(obj)) and not isinstance(obj, types.ModuleType):
            # A module-level instance (a guard, a slug scope): its class's methods, and the
            # functions and errors it was made with (`SlugScope(taken=lambda s: SlugTaken())`).
            self.classes.append(type(obj))
            for value in getattr(obj, "__dict__", {}).values():
                if inspect.isfunction(value) or _is_error_class(value):
                    self.add_object(value)


def _is_typing_form(obj: object) -> bool:
    return typing.get_origin(obj) is not None or isinstance(obj, types.UnionType)


def _typing_parts(obj: object) -> Iterator[object]:
    """The classes and dependency callables inside `Annotated[X, Depends(f)]` and the like."""
    for arg in typing.get_args(obj):
        dependency = getattr(arg, "dependency", None)
        if dependency is not None:
            yield dependency
        else:
            yield arg
    metadata = getattr(obj, "__metadata__", ())
    for item in metadata:
        dependency = getattr(item, "dependency", None)
        if dependency is not None:
            yield dependency


def _not_raised(tree: ast.AST) -> set[int]:
    """Ids of the nodes naming classes that are caught or tested, not raised."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            targets.append(node.type)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"isinstance", "issubclass"}
            and len(node.args) == 2
        ):
            targets.append(node.args[1])
        for target in targets:
            skipped.update(id(inner) for inner in ast.walk(target))
    return skipped


def _dotted(node: ast.expr) -> list[str] | None:
    """`a.b.c` as `["a", "b", "c"]`; None when the chain does not start with a name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


_MISSING = object()


def _namespace(function: Callable[..., Any]) -> dict[str, Any]:
    names: dict[str, Any] = dict(getattr(function, "__globals__", {}))
    code = getattr(function, "__code__", None)
    closure = getattr(function, "__closure__", None) or ()
    if code is not None:
        for name, cell in zip(code.co_freevars, closure, strict=False):
            try:
                names[name] = cell.cell_contents
            except ValueError:  # an empty cell
                continue
    return names


def _resolve(parts: list[str], names: dict[str, Any]) -> object:
    obj = names.get(parts[0], _MISSING)
    for part in parts[1:]:
        if obj is _MISSING:
            return obj
        obj = getattr(obj, part, _MISSING)
    return obj


@cache
def _module_functions(filename: str) -> dict[int, ast.AST]:
    """A source file's function definitions and lambdas by first line (that of their first
    decorator too): one parse per module, not one per function."""
    try:
        with open(filename, encoding="utf-8") as source:
            tree = ast.parse(source.read(), filename)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    found: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.setdefault(node.lineno, node)
            for decorator in node.decorator_list:
                found.setdefault(decorator.lineno, node)
        elif isinstance(node, ast.Lambda):
            found.setdefault(node.lineno, node)
    return found


def _function_node(function: Callable[..., Any]) -> ast.AST | None:
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    nodes = _module_functions(code.co_filename)
    node = nodes.get(code.co_firstlineno)
    if isinstance(node, ast.Lambda) or getattr(node, "name", None) == code.co_name:
        return node
    # The file changed since it was imported (an edit under a running server): the one
    # definition of that name, if there is one.
    named = [n for n in set(nodes.values()) if getattr(n, "name", None) == code.co_name]
    return named[0] if len(named) == 1 else None


@cache
def _facts(function: Callable[..., Any]) -> _Facts:
    reach = _Reach()
    tree = _function_node(function)
    if tree is None:
        return _Facts(frozenset(), (), (), frozenset())
    names = _namespace(function)
    skipped = _not_raised(tree)
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, (ast.Name, ast.Attribute)):
            continue
        if isinstance(node, ast.Attribute):
            reach.attributes.add(node.attr)
        parts = _dotted(node)
        if parts is None:
            continue
        obj = _resolve(parts, names)
        if obj is not _MISSING:
            reach.add_object(obj)
    return _Facts(
        frozenset(reach.errors),
        tuple(reach.functions),
        tuple(reach.classes),
        frozenset(reach.attributes),
    )


def _methods(cls: type, names: Iterable[str]) -> Iterator[Callable[..., Any]]:
    """The package-defined methods (and properties' accessors) `names` reach on `cls`."""
    for name in names:
        for klass in cls.__mro__:
            if not _in_package(klass) or name not in vars(klass):
                continue
            member = vars(klass)[name]
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                yield from (a for a in (member.fget, member.fset) if a is not None)
            elif inspect.isfunction(member):
                yield member
            break


# The methods a class's use runs without naming them: making it, calling an instance,
# `async with` and `with` over one.
_CONSTRUCTORS = frozenset(
    {"__init__", "__post_init__", "__call__", "__aenter__", "__aexit__", "__enter__", "__exit__"}
)

_Entry = tuple[Callable[..., Any], "type | None"]


@cache
def _successors(function: Callable[..., Any], owner: type | None) -> tuple[_Entry, ...]:
    """What a function reaches one call down: its callees, and the methods of the classes
    in its reach named by its attribute accesses (constructors of the classes it names)."""
    facts = _facts(function)
    found: list[_Entry] = [(inspect.unwrap(callee), None) for callee in facts.functions]
    for cls in dict.fromkeys([*facts.classes, *([owner] if owner is not None else [])]):
        wanted = facts.attributes if cls is owner else facts.attributes | _CONSTRUCTORS
        found.extend((method, cls) for method in _methods(cls, wanted))
    return tuple(dict.fromkeys(found))


def errors_reached(entries: Iterable[_Entry]) -> set[type[AppError]]:
    """Every `AppError` subclass named by the code reachable from `entries` (a function and
    the class it is a method of, if any), at most `MAX_DEPTH` calls down."""
    found: set[type[AppError]] = set()
    seen: set[_Entry] = set()
    frontier = [(inspect.unwrap(function), owner) for function, owner in entries]
    for _depth in range(MAX_DEPTH + 1):
        following: list[_Entry] = []
        for entry in frontier:
            if entry in seen:
                continue
            seen.add(entry)
            found |= _facts(entry[0]).errors
            following.extend(_successors(*entry))
        frontier = following
        if not frontier:
            break
    return found


def _dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _dependency_calls(dependency)


def _entry(call: Callable[..., Any]) -> tuple[Callable[..., Any], type | None]:
    """A dependency's code: a function, or the `__call__` of a callable instance (a guard)."""
    if inspect.isfunction(call) or inspect.ismethod(call):
        return call, None
    if isinstance(call, type):
        return inspect.getattr_static(call, "__init__"), call
    return type(call).__call__, type(call)


def route_dependencies(route: Any) -> list[Callable[..., Any]]:
    """Every dependency callable FastAPI resolves for the route (an `APIRoute` or the
    context FastAPI gives an included one), nested ones included."""
    dependant: Dependant = route.dependant
    return list(_dependency_calls(dependant))


def route_errors(route: Any) -> set[type[AppError]]:
    """The `AppError` subclasses the route's code can raise."""
    entries = [_entry(route.endpoint)]
    entries.extend(_entry(call) for call in route_dependencies(route))
    route_class = type(getattr(route, "original_route", route))
    entries.extend(
        (method, route_class)
        for klass in route_class.__mro__
        if _in_package(klass)
        for method in vars(klass).values()
        if inspect.isfunction(method)
    )
    return errors_reached(entries)


def api_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every `APIRoute` of the app, included routers flattened, as FastAPI's document sees
    them (with the prefixes, dependencies and responses of the routers they are in)."""
    for context in routing.iter_route_contexts(list(routes)):
        if isinstance(context.original_route, APIRoute):
            yield context
