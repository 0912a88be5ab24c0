"""The parts of the server's subschema (RFC 4512) that the tool checks.

Names and syntaxes for values it writes; for a restore (security 30), each attribute type and
object class by any of its names or its OID, its superiors, and whether it is operational.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_TOKEN = re.compile(r"'[^']*'|\(|\)|[^\s()']+")
_LENGTH_BOUND = re.compile(r"\{\d+\}$")


@dataclass(frozen=True)
class Subschema:
    """Attribute types and object classes the server knows, by lower-cased name."""

    attribute_types: frozenset[str]
    object_classes: frozenset[str]
    syntaxes: dict[str, str]
    """Lower-cased attribute name -> syntax OID, inherited from the superior type when absent."""
    attribute_names: dict[str, str] = field(default_factory=dict)
    """Any lower-cased name or OID of an attribute type -> its first name (its OID if none)."""
    attribute_superiors: dict[str, str] = field(default_factory=dict)
    """Lower-cased first name -> lower-cased first name of its superior (``SUP``)."""
    operational: frozenset[str] = frozenset()
    """Lower-cased first names of the types with a ``USAGE`` other than userApplications or
    ``NO-USER-MODIFICATION``: the server's own, never written back by a restore."""
    class_names: dict[str, str] = field(default_factory=dict)
    """Any lower-cased name or OID of an object class -> its first name."""
    class_superiors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Lower-cased first name -> lower-cased first names of its superior classes."""

    def attribute_name(self, key: str) -> str | None:
        """The first name of the attribute type named (or numbered) ``key``, or None."""
        return self.attribute_names.get(key.lower())

    def attribute_lineage(self, key: str) -> list[str]:
        """The lower-cased first names of the type ``key`` and of its superiors, in order."""
        name = self.attribute_name(key)
        lineage: list[str] = []
        while name is not None and name.lower() not in lineage and len(lineage) < 32:
            lineage.append(name.lower())
            superior = self.attribute_superiors.get(name.lower())
            name = self.attribute_name(superior) if superior else None
        return lineage

    def is_operational(self, key: str) -> bool:
        """Whether any type in the lineage of ``key`` is operational or not user-modifiable."""
        return any(name in self.operational for name in self.attribute_lineage(key))

    def class_name(self, key: str) -> str | None:
        """The first name of the object class named (or numbered) ``key``, or None."""
        return self.class_names.get(key.lower())

    def class_lineage(self, key: str) -> set[str]:
        """The lower-cased first names of the class ``key`` and of all its superiors."""
        pending, seen = [key], set[str]()
        while pending and len(seen) < 64:
            name = self.class_name(pending.pop())
            if name is not None and name.lower() not in seen:
                seen.add(name.lower())
                pending.extend(self.class_superiors.get(name.lower(), ()))
        return seen

    def has_attribute(self, name: str) -> bool:
        """Whether the server defines the attribute type ``name`` (case-insensitive)."""
        return name.lower() in self.attribute_types

    def has_object_class(self, name: str) -> bool:
        """Whether the server defines the object class ``name`` (case-insensitive)."""
        return name.lower() in self.object_classes


@dataclass(frozen=True)
class _Definition:
    oid: str
    names: tuple[str, ...]
    fields: dict[str, tuple[str, ...]]


def _parse_definition(text: str) -> _Definition:
    """Split ``( OID NAME ( 'a' 'b' ) SUP x SYNTAX 1.2.3{64} ... )`` into its fields."""
    tokens = _TOKEN.findall(text)
    if len(tokens) < 3 or tokens[0] != "(" or tokens[-1] != ")":
        raise ValueError(f"not a schema definition: {text!r}")
    body = tokens[2:-1]
    fields: dict[str, tuple[str, ...]] = {}
    pos = 0
    while pos < len(body):
        keyword = body[pos].upper()
        pos += 1
        values: list[str] = []
        if pos < len(body) and body[pos] == "(":
            end = body.index(")", pos)
            values = [item for item in body[pos + 1 : end] if item != "$"]
            pos = end + 1
        elif pos < len(body) and not _is_keyword(body[pos]):
            values = [body[pos]]
            pos += 1
        fields[keyword] = tuple(value.strip("'") for value in values)
    return _Definition(oid=tokens[1], names=fields.get("NAME", ()), fields=fields)


def _is_keyword(token: str) -> bool:
    return token.isupper() and not token.startswith("'") and "." not in token


def parse_subschema(attribute_types: Iterable[str], object_classes: Iterable[str]) -> Subschema:
    """Build a ``Subschema`` from the values of ``attributeTypes`` and ``objectClasses``.

    A type without a SYNTAX takes its superior's (``supannAutreMail SUP mail``).
    """
    definitions = [_parse_definition(text) for text in attribute_types]
    by_key: dict[str, _Definition] = {}
    for definition in definitions:
        for key in (definition.oid, *definition.names):
            by_key[key.lower()] = definition

    def syntax_of(definition: _Definition, depth: int = 0) -> str | None:
        if "SYNTAX" in definition.fields:
            return _LENGTH_BOUND.sub("", definition.fields["SYNTAX"][0])
        superior = definition.fields.get("SUP", ())
        if not superior or depth > 32 or superior[0].lower() not in by_key:
            return None
        return syntax_of(by_key[superior[0].lower()], depth + 1)

    syntaxes: dict[str, str] = {}
    for definition in definitions:
        syntax = syntax_of(definition)
        if syntax:
            syntaxes.update({name.lower(): syntax for name in definition.names})
    classes = [_parse_definition(text) for text in object_classes]
    return Subschema(
        attribute_types=frozenset(name.lower() for d in definitions for name in d.names),
        object_classes=frozenset(name.lower() for d in classes for name in d.names),
        syntaxes=syntaxes,
        attribute_names=_names(definitions),
        attribute_superiors={
            _first(d).lower(): d.fields["SUP"][0].lower()
            for d in definitions
            if d.fields.get("SUP")
        },
        operational=frozenset(
            _first(d).lower()
            for d in definitions
            if "NO-USER-MODIFICATION" in d.fields
            or d.fields.get("USAGE", ("userApplications",))[0].lower() != "userapplications"
        ),
        class_names=_names(classes),
        class_superiors={
            _first(d).lower(): tuple(name.lower() for name in d.fields.get("SUP", ()))
            for d in classes
        },
    )


def _first(definition: _Definition) -> str:
    return definition.names[0] if definition.names else definition.oid


def _names(definitions: Iterable[_Definition]) -> dict[str, str]:
    """Each lower-cased name and OID -> the definition's first name."""
    return {
        key.lower(): _first(definition)
        for definition in definitions
        for key in (definition.oid, *definition.names)
    }
