"""Server-side apply's merge rules, as the Kubernetes API server applies them, for the fake API server.

The API server decides how two managers' fields merge, which fields an applier owns,
what a second manager conflicts with and what is deleted when an applier stops
sending a field, with the structured-merge-diff library (``sigs.k8s.io/structured-
merge-diff/v4``: ``typed/``, ``merge/update.go``) over a schema converted from the
published OpenAPI document (``k8s.io/kube-openapi/pkg/schemaconv``). This module
follows the same rules, and takes every merge strategy from the real documents kept
under ``tests/data/openapi/`` (see its README for their source), never from a guess:

- an object with ``properties`` is a struct, with ``additionalProperties`` a map; both
  are *granular* (each field merges and is owned on its own) unless the schema says
  ``x-kubernetes-map-type: atomic``. A property that carries its own
  ``x-kubernetes-map-type`` overrides the referenced type's (``PersistentVolumeSpec.claimRef``
  is ``granular`` although ``ObjectReference`` is ``atomic``);
- a list is ``atomic`` (replaced whole, owned as one field) unless
  ``x-kubernetes-list-type`` says ``set`` (items owned by value) or ``map`` (items owned by
  the ``x-kubernetes-list-map-keys``); without a list type, ``x-kubernetes-patch-strategy:
  merge`` with a ``x-kubernetes-patch-merge-key`` makes it a map list, and without a key a
  set (``schemaconv``'s ``getListElementRelationship``);
- a field without a schema (a missing ``$ref``, ``x-kubernetes-preserve-unknown-fields``)
  is *deduced*: maps granular, lists atomic (``schema.Deduced``).

Field sets are sets of paths; a path is a tuple of elements ``("f", name)`` (a struct
field or map key), ``("k", ((key, json), ...))`` (a map-list item by its keys) and
``("v", json)`` (a set item). The operations mirror the library's:

- :func:`field_set` is ``TypedValue.ToFieldSet`` (leaves, list items, empty or null
  map entries, and map keys that are not declared fields);
- :func:`compare` is ``TypedValue.Compare`` (added, removed, modified paths);
- :func:`merge` is ``TypedValue.Merge`` (the live object with an applied config laid over it);
- :class:`Managers` ``.apply`` and ``.update`` are ``Updater.Apply`` and ``Updater.Update``:
  conflicts with other managers (forced or refused), ownership moved by an update, and
  pruning of fields the applier applied before, applies no longer, and nobody else owns.

Fields the API server never records (``stripmeta.go`` in ``k8s.io/apimachinery/pkg/util/
managedfields/internal``) are left out of every field set: ``apiVersion``, ``kind``,
``metadata`` itself and its ``name``, ``namespace``, ``creationTimestamp``, ``selfLink``,
``uid``, ``clusterName``, ``generation``, ``managedFields`` and ``resourceVersion``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parents[1] / "data" / "openapi"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

Element = tuple[str, Any]
FieldPath = tuple[Element, ...]

#: What the API server strips from every managed field set (stripmeta.go).
STRIPPED: frozenset[FieldPath] = frozenset(
    {(("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"),)}
    | {(("f", "metadata"), ("f", name)) for name in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                                     "clusterName", "generation", "managedFields",
                                                     "resourceVersion")})


# --- types ---------------------------------------------------------------------------------------


class Type:
    """A node of the schema."""


@dataclass(frozen=True, eq=False)
class Scalar(Type):
    """A string, number, boolean (or int-or-string): a leaf."""


@dataclass(frozen=True, eq=False)
class Deduced(Type):
    """No schema: maps are granular, lists atomic, everything else a leaf (``schema.Deduced``)."""


@dataclass(eq=False)
class MapType(Type):
    """A struct (declared fields) and/or a map (an element type for any other key)."""

    fields: dict[str, Type] = field(default_factory=dict)
    element: Type | None = None
    atomic: bool = False

    def child(self, name: str) -> Type | None:
        return self.fields.get(name, self.element)


@dataclass(eq=False)
class ListType(Type):
    """A list: ``atomic``, a ``set`` of scalars, or a ``map`` list keyed by ``keys``."""

    element: Type
    kind: str = "atomic"
    keys: tuple[str, ...] = ()


SCALAR = Scalar()
DEDUCED = Deduced()


class Schema:
    """OpenAPI v3 component schemas, converted to merge types on demand."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self.schemas = dict(schemas)
        self._named: dict[str, Type] = {}
        self.by_gvk: dict[tuple[str, str, str], str] = {}
        for name, doc in self.schemas.items():
            for gvk in doc.get("x-kubernetes-group-version-kind") or []:
                self.by_gvk[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = name

    @classmethod
    def load(cls, *files: str) -> Schema:
        """The schemas of OpenAPI documents under ``tests/data/openapi`` (default: every ``*.json`` there)."""
        schemas: dict[str, Any] = {}
        paths = [DATA / f for f in files] if files else sorted(DATA.glob("*.json"))
        for path in paths:
            schemas.update(json.loads(path.read_text(encoding="utf-8"))["components"]["schemas"])
        return cls(schemas)

    def named(self, name: str) -> Type:
        """The type of one component schema (DEDUCED when the document does not have it)."""
        if name not in self._named:
            doc = self.schemas.get(name)
            if doc is None:
                return DEDUCED
            if doc.get("type") == "object" or "properties" in doc or "additionalProperties" in doc:
                placeholder = MapType()
                self._named[name] = placeholder  # recursive schemas refer to themselves
                built = self.convert(doc)
                if isinstance(built, MapType):
                    placeholder.fields, placeholder.element, placeholder.atomic = (built.fields, built.element,
                                                                                   built.atomic)
                else:
                    self._named[name] = built
            else:
                self._named[name] = self.convert(doc)
        return self._named[name]

    def convert(self, node: Mapping[str, Any] | None) -> Type:
        """The merge type of one schema node (a property, an item, a whole schema)."""
        node = node or {}
        ref = node.get("$ref")
        if ref is None and len(node.get("allOf") or []) == 1:
            ref = node["allOf"][0].get("$ref")
        map_type = node.get("x-kubernetes-map-type")
        if ref is not None:
            base = self.named(str(ref).rsplit("/", 1)[-1])
            if map_type is not None and isinstance(base, MapType):
                return replace(base, atomic=map_type == "atomic")
            return base
        kind = node.get("type")
        if node.get("x-kubernetes-int-or-string") or kind in ("string", "integer", "number", "boolean"):
            return SCALAR
        if kind == "array" or "items" in node:
            return self._list(node)
        if kind == "object" or "properties" in node or "additionalProperties" in node:
            props = node.get("properties") or {}
            extra = node.get("additionalProperties")
            if not props and not isinstance(extra, Mapping):
                return DEDUCED  # an object of any shape (x-kubernetes-preserve-unknown-fields, FieldsV1)
            element = self.convert(extra) if isinstance(extra, Mapping) else None
            return MapType({k: self.convert(v) for k, v in props.items()}, element, map_type == "atomic")
        return DEDUCED

    def _list(self, node: Mapping[str, Any]) -> ListType:
        element = self.convert(node.get("items"))
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "map":
            return ListType(element, "map", tuple(node.get("x-kubernetes-list-map-keys") or ()))
        if list_type == "set":
            return ListType(element, "set")
        if list_type is None and node.get("x-kubernetes-patch-strategy") in ("merge", "merge,retainKeys"):
            key = node.get("x-kubernetes-patch-merge-key")
            return ListType(element, "map", (str(key),)) if key else ListType(element, "set")
        return ListType(element, "atomic")

    def for_kind(self, group: str, version: str, kind: str, crd_schema: Mapping[str, Any] | None = None) -> Type:
        """The root type of a kind: its schema, with ``metadata`` always the real ObjectMeta."""
        if crd_schema is not None:
            root = self.convert(crd_schema)
        else:
            name = self.by_gvk.get((group, version, kind))
            root = self.named(name) if name else DEDUCED
        meta = self.named(OBJECT_META)
        if isinstance(root, MapType):
            return MapType({**root.fields, "metadata": meta}, root.element, root.atomic)
        return MapType({"metadata": meta}, DEDUCED)

    def relationship(self, group: str, version: str, kind: str, *fields: str) -> str:
        """How a field merges: ``granular``, ``atomic``, ``set``, ``map`` or ``scalar`` (for tests and docs)."""
        t: Type | None = self.for_kind(group, version, kind)
        for name in fields:
            while isinstance(t, ListType):
                t = t.element
            t = t.child(name) if isinstance(t, MapType) else DEDUCED
        if isinstance(t, MapType):
            return "atomic" if t.atomic else "granular"
        if isinstance(t, ListType):
            return t.kind
        if isinstance(t, Deduced):
            return "deduced"
        return "scalar"


def load_crd_schema(crd: Mapping[str, Any], version: str) -> Mapping[str, Any] | None:
    """The ``openAPIV3Schema`` of one version of a CustomResourceDefinition, if it has one."""
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("name") == version:
            return ((v.get("schema") or {}).get("openAPIV3Schema")) or None
    return None


def load_crd(file_name: str) -> dict[str, Any]:
    """A CustomResourceDefinition kept under ``tests/data/openapi`` (YAML)."""
    return dict(yaml.safe_load((DATA / file_name).read_text(encoding="utf-8")))


# --- field sets ------------------------------------------------------------------------------------


def _key_element(item: Any, keys: tuple[str, ...]) -> Element:
    if not isinstance(item, Mapping):
        return ("v", _canon(item))
    return ("k", tuple((k, _canon(item.get(k))) for k in keys))


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def field_set(value: Any, t: Type, path: FieldPath = ()) -> set[FieldPath]:
    """Every field ``value`` sets, as the API server records them for its manager."""
    out: set[FieldPath] = set()
    _walk_set(value, t, path, out)
    return {p for p in out if p not in STRIPPED and not _under(p, (("f", "metadata"), ("f", "managedFields")))}


def _under(path: FieldPath, prefix: FieldPath) -> bool:
    return path[:len(prefix)] == prefix


def _walk_set(value: Any, t: Type, path: FieldPath, out: set[FieldPath]) -> None:
    if isinstance(t, MapType | Deduced) and isinstance(value, Mapping):
        if isinstance(t, MapType) and t.atomic:
            out.add(path)
            return
        for key, child in value.items():
            declared = isinstance(t, MapType) and key in t.fields
            sub = t.child(str(key)) if isinstance(t, MapType) else DEDUCED
            child_path = (*path, ("f", str(key)))
            _walk_set(child, sub or DEDUCED, child_path, out)
            if child is None or (isinstance(child, Mapping) and not child) or not declared:
                out.add(child_path)
        return
    if isinstance(t, ListType) and t.kind != "atomic" and isinstance(value, list):
        for item in value:
            item_path = (*path, _key_element(item, t.keys))
            _walk_set(item, t.element, item_path, out)
            out.add(item_path)
        return
    out.add(path)  # a scalar, an atomic list or map, a deduced list


def _leaves(value: Any, t: Type, path: FieldPath = ()) -> dict[FieldPath, Any]:
    """Each field of :func:`field_set` with the value compared for it (None for a list item itself)."""
    out: dict[FieldPath, Any] = {}

    def walk(v: Any, tt: Type, p: FieldPath) -> None:
        if isinstance(tt, MapType | Deduced) and isinstance(v, Mapping) and not (isinstance(tt, MapType)
                                                                                and tt.atomic):
            for key, child in v.items():
                sub = tt.child(str(key)) if isinstance(tt, MapType) else DEDUCED
                cp = (*p, ("f", str(key)))
                if child is None or (isinstance(child, Mapping) and not child):
                    out[cp] = _canon(child)
                walk(child, sub or DEDUCED, cp)
            return
        if isinstance(tt, ListType) and tt.kind != "atomic" and isinstance(v, list):
            for item in v:
                ip = (*p, _key_element(item, tt.keys))
                out[ip] = None
                walk(item, tt.element, ip)
            return
        out[p] = _canon(v)

    walk(value, t, path)
    return out


@dataclass(frozen=True)
class Comparison:
    """What changed between two objects, field by field (``typed.Comparison``)."""

    added: frozenset[FieldPath]
    removed: frozenset[FieldPath]
    modified: frozenset[FieldPath]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.modified)


def compare(old: Any, new: Any, t: Type) -> Comparison:
    """The fields ``new`` adds, removes and changes relative to ``old``."""
    a, b = _leaves(old, t), _leaves(new, t)
    return Comparison(frozenset(b.keys() - a.keys()), frozenset(a.keys() - b.keys()),
                      frozenset(p for p in a.keys() & b.keys() if a[p] != b[p]))


# --- merging and removing ----------------------------------------------------------------------------


def merge(lhs: Any, rhs: Any, t: Type) -> Any:
    """``rhs`` (an applied config) laid over ``lhs`` (the live object)."""
    if isinstance(t, MapType | Deduced) and isinstance(lhs, Mapping) and isinstance(rhs, Mapping):
        if isinstance(t, MapType) and t.atomic:
            return copy.deepcopy(rhs)
        out = copy.deepcopy(dict(lhs))
        for key, value in rhs.items():
            sub = t.child(str(key)) if isinstance(t, MapType) else DEDUCED
            out[key] = merge(lhs[key], value, sub or DEDUCED) if key in lhs else copy.deepcopy(value)
        return out
    if isinstance(t, ListType) and t.kind != "atomic" and isinstance(lhs, list) and isinstance(rhs, list):
        out_list = copy.deepcopy(lhs)
        index = {_key_element(item, t.keys): i for i, item in enumerate(out_list)}
        for item in rhs:
            key = _key_element(item, t.keys)
            if key in index:
                out_list[index[key]] = merge(out_list[index[key]], item, t.element)
            else:
                index[key] = len(out_list)
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(rhs)


def remove(value: Any, paths: Iterable[FieldPath]) -> Any:
    """``value`` without the fields (and everything under them) at ``paths``."""
    out = copy.deepcopy(value)
    for path in sorted(paths, key=len, reverse=True):
        _remove_one(out, path)
    return out


def _remove_one(value: Any, path: FieldPath) -> None:
    if not path:
        return
    parent = value
    for element in path[:-1]:
        parent = _child(parent, element)
        if parent is None:
            return
    kind, key = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(key, None)
    elif kind in ("k", "v") and isinstance(parent, list):
        parent[:] = [item for item in parent if _matches(item, path[-1]) is False]


def _matches(item: Any, element: Element) -> bool:
    kind, key = element
    if kind == "v":
        return _canon(item) == key
    return isinstance(item, Mapping) and tuple((k, _canon(item.get(k))) for k, _v in key) == key


def _child(value: Any, element: Element) -> Any:
    kind, key = element
    if kind == "f":
        return value.get(key) if isinstance(value, dict) else None
    if isinstance(value, list):
        return next((item for item in value if _matches(item, element)), None)
    return None


def _value_at(value: Any, path: FieldPath) -> Any:
    for element in path:
        value = _child(value, element)
        if value is None:
            return None
    return value


# --- managers ------------------------------------------------------------------------------------


#: A manager as managedFields tells them apart: (manager, operation, subresource).
ManagerKey = tuple[str, str, str]


class Conflict(Exception):
    """An apply would change fields another manager owns; ``fields`` by manager."""

    def __init__(self, fields: Mapping[str, list[FieldPath]]) -> None:
        super().__init__("conflict")
        self.fields = dict(fields)


@dataclass
class Managers:
    """Who owns which field of one object (its ``metadata.managedFields``)."""

    sets: dict[ManagerKey, set[FieldPath]] = field(default_factory=dict)
    api_version: dict[ManagerKey, str] = field(default_factory=dict)

    def copy(self) -> Managers:
        return Managers({k: set(v) for k, v in self.sets.items()}, dict(self.api_version))

    def owners(self, path: FieldPath) -> list[ManagerKey]:
        return [k for k, s in self.sets.items() if path in s]

    def _owned_at_or_under(self, path: FieldPath, skip: ManagerKey | None = None) -> bool:
        return any(p[:len(path)] == path for k, s in self.sets.items() if k != skip for p in s)

    def _move(self, old: Any, new: Any, t: Type, workflow: ManagerKey, *, force: bool) -> Comparison:
        """``Updater.update``: conflicts with other managers, and fields taken from them."""
        cmp = compare(old, new, t)
        changed = cmp.modified | cmp.added
        conflicts = {k: sorted(s & changed) for k, s in self.sets.items() if k != workflow and s & changed}
        if conflicts and not force:
            raise Conflict({k[0]: v for k, v in conflicts.items()})
        for k, lost in conflicts.items():
            self.sets[k] -= set(lost)
        for k in list(self.sets):
            if k != workflow:
                self.sets[k] -= cmp.removed
        for k in [k for k, s in self.sets.items() if not s]:
            del self.sets[k]
            self.api_version.pop(k, None)
        return cmp

    def apply(self, live: Any, config: Any, t: Type, manager: str, *, force: bool, api_version: str,
              subresource: str = "", ignore: Iterable[FieldPath] = ()) -> Any:
        """``Updater.Apply``: the object after ``manager`` applied ``config``; ownership updated in place.

        Raises:
            Conflict: a field ``config`` changes is owned by another manager, and not ``force``.
        """
        key = (manager, "Apply", subresource)
        ignored = tuple(ignore)
        trial = self.copy()
        merged = merge(live, config, t)
        last = trial.sets.get(key, set())
        trial.sets[key] = {p for p in field_set(config, t) if not any(_under(p, i) for i in ignored)}
        trial.api_version[key] = api_version
        merged = trial._prune(merged, last, key)
        trial._move(live, merged, t, key, force=force)
        self.sets, self.api_version = trial.sets, trial.api_version
        return merged

    def _prune(self, merged: Any, last: set[FieldPath], key: ManagerKey) -> Any:
        """Remove what ``key`` applied before, applies no longer, and no manager owns."""
        gone = {p for p in last - self.sets[key] if not self.owners(p)}
        if not gone:
            return merged
        out = remove(merged, gone)
        # Maps and structs left empty by the removal go too, unless someone owns them or something under them.
        parents = sorted({p[:i] for p in gone for i in range(1, len(p))}, key=len, reverse=True)
        for parent in parents:
            value = _value_at(out, parent)
            if isinstance(value, dict) and not value and not self._owned_at_or_under(parent):
                out = remove(out, [parent])
        return out

    def update(self, live: Any, new: Any, t: Type, manager: str, *, api_version: str, subresource: str = "",
               ignore: Iterable[FieldPath] = ()) -> None:
        """``Updater.Update``: ``manager`` (operation Update) owns what it changed; others lose it."""
        key = (manager, "Update", subresource)
        ignored = tuple(ignore)
        cmp = self._move(live, new, t, key, force=True)
        mine = (self.sets.get(key, set()) - cmp.removed) | cmp.modified | cmp.added
        mine = {p for p in mine if p not in STRIPPED and not _under(p, (("f", "metadata"), ("f", "managedFields")))
                and not any(_under(p, i) for i in ignored)}
        if mine:
            self.sets[key] = mine
            self.api_version[key] = api_version
        else:
            self.sets.pop(key, None)
            self.api_version.pop(key, None)

    def entries(self, time: str) -> list[dict[str, Any]]:
        """``metadata.managedFields`` as the API server writes it (FieldsV1)."""
        out = []
        for (manager, operation, subresource), paths in self.sets.items():
            entry: dict[str, Any] = {"manager": manager, "operation": operation,
                                     "apiVersion": self.api_version.get((manager, operation, subresource), "v1"),
                                     "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
            if subresource:
                entry["subresource"] = subresource
            out.append(entry)
        return out


def fields_v1(paths: Iterable[FieldPath]) -> dict[str, Any]:
    """A field set in the FieldsV1 encoding (``f:name``, ``k:{...}``, ``v:...``, ``.`` for an item itself)."""
    root: dict[str, Any] = {}
    members: set[FieldPath] = set(paths)
    for path in sorted(members, key=lambda p: (len(p), repr(p))):
        node = root
        for element in path:
            node = node.setdefault(_encode(element), {})
    for path in members:
        node = root
        for element in path:
            node = node[_encode(element)]
        if node:
            node["."] = {}
    return root


def _encode(element: Element) -> str:
    kind, key = element
    if kind == "f":
        return f"f:{key}"
    if kind == "v":
        return f"v:{key}"
    return "k:" + json.dumps({k: json.loads(v) for k, v in key}, separators=(",", ":"))


def path_string(path: FieldPath) -> str:
    """A path as the API server prints it in a conflict (``fieldpath.Path.String``): ``.spec.ports[port=80]``."""
    out = ""
    for kind, key in path:
        if kind == "f":
            out += f".{key}"
        elif kind == "v":
            out += f"[={key}]"
        else:
            out += "[" + ",".join(f"{k}={v}" for k, v in key) + "]"
    return out
