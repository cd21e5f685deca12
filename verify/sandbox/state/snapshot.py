"""A deep copy of an object's data, restorable in place: what a state snapshot is made of.

The copy is generic, so a store that gains a field (or a whole nested store) is in every
snapshot without anyone listing it. What is not data is left as it is:

* attributes named in ``skip`` (e.g. the role catalog, shared and never written), and
  attributes holding one of the objects in ``refs`` (a back-reference to the sandbox or to
  a store snapshotted on its own);
* locks, and callables (an event subscriber, a clock, a URL callback), and containers
  holding only callables (a table of handlers);
* an attribute holding an object that owns a lock (a nested store, such as an ARM
  document model guarding its documents) is not replaced but restored in place, by the
  same rules, so whoever holds a reference to it sees the restored data.

The whole tree is copied with one ``deepcopy``, so two attributes sharing an object still
share one after a restore.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, is_dataclass
from typing import Any

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


@dataclass
class DataTree:
    """One object's data attributes, and the trees of the nested stores it holds."""

    attrs: dict[str, Any] = field(default_factory=dict)
    nested: dict[str, DataTree] = field(default_factory=dict)


def _not_data(value: Any) -> bool:
    if isinstance(value, _LOCK_TYPES) or callable(value):
        return True
    items: list[Any] = []
    if isinstance(value, Mapping):
        items = list(value.values())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    return bool(items) and all(callable(item) for item in items)


def _is_nested_store(value: Any) -> bool:
    if isinstance(value, type) or is_dataclass(value) or not hasattr(value, "__dict__"):
        return False
    return any(isinstance(v, _LOCK_TYPES) for v in vars(value).values())


class _Walk:
    """One walk over a store: the nested stores' locks it holds (each entered once, so a
    store reached twice cannot deadlock on a plain lock), released when the walk ends."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._held: set[int] = set()

    def hold_locks(self, store: Any) -> None:
        for value in list(vars(store).values()):
            if isinstance(value, _LOCK_TYPES) and id(value) not in self._held:
                self._held.add(id(value))
                self._stack.enter_context(value)


def _tree(obj: Any, skip: Collection[str], refs: tuple[object, ...], walk: _Walk) -> DataTree:
    """``obj``'s data, uncopied, its nested stores' locks held. ``refs`` holds ``obj`` and
    the stores above it: a back-reference to one of them is no data of ``obj``."""
    tree = DataTree()
    for name, value in vars(obj).items():
        if name in skip or _not_data(value) or any(value is ref for ref in refs):
            continue
        if _is_nested_store(value):
            walk.hold_locks(value)
            tree.nested[name] = _tree(value, (), (*refs, value), walk)
        else:
            tree.attrs[name] = value
    return tree


def data_copy(obj: Any, skip: Collection[str] = (), refs: Collection[object] = ()) -> DataTree:
    """A deep copy of ``obj``'s data (the caller holds whatever lock guards ``obj``; the
    nested stores' own locks are held while they are copied). Attributes holding one of
    ``refs`` are left out."""
    with contextlib.ExitStack() as stack:
        return copy.deepcopy(_tree(obj, skip, (*refs, obj), _Walk(stack)))


def restore_data(
    obj: Any, snapshot: DataTree, skip: Collection[str] = (), refs: Collection[object] = ()
) -> None:
    """Put ``obj``'s data back as ``snapshot`` holds it (which stays reusable): every data
    attribute replaced, one made since removed, nested stores restored in place."""
    with contextlib.ExitStack() as stack:
        _apply(obj, copy.deepcopy(snapshot), skip, (*refs, obj), _Walk(stack))


def _apply(
    obj: Any, tree: DataTree, skip: Collection[str], refs: tuple[object, ...], walk: _Walk
) -> None:
    current = _tree(obj, skip, refs, walk)
    for name in current.attrs.keys() - tree.attrs.keys():
        delattr(obj, name)
    for name, value in tree.attrs.items():
        object.__setattr__(obj, name, value)
    for name, nested in tree.nested.items():
        store = getattr(obj, name)
        _apply(store, nested, (), (*refs, store), walk)
