"""An XMP packet read, edited property by property, and written back without losing anything else.

Sidecars belong to other programs first: darktable keeps its whole edit
history in one (``darktable:history``), digiKam its tags, Lightroom its
develop settings. So an edit here touches only the properties it sets and
keeps every other element, attribute, namespace, comment and processing
instruction, and the whitespace between them:

- properties are read and set on the top-level ``rdf:Description`` elements,
  as attributes (``xmp:Rating="3"``) or simple elements
  (``<xmp:Rating>3</xmp:Rating>``), in the form the file already uses; a new
  property becomes an attribute of the first description;
- namespace declarations stay on the elements that made them, with their
  prefixes; a namespace the file lacks is declared where it is first used;
- a file that is not UTF-8, holds a DOCTYPE (refused: that is where entity
  expansion attacks live, and XMP has no use for one), is not well-formed
  XML, nests elements deeper than ``MAX_DEPTH`` (writing is recursive: such a
  file would exhaust the stack), or has no ``rdf:RDF``, raises ``XmpError``
  and is never rewritten.

Writing is deterministic: reading what ``to_bytes`` wrote and writing it
again gives the same bytes, so an unchanged sidecar is recognised as such.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X = "adobe:ns:meta/"
XMP = "http://ns.adobe.com/xap/1.0/"
MICROSOFT_PHOTO = "http://ns.microsoft.com/photo/1.0/"
XML = "http://www.w3.org/XML/1998/namespace"
# Prefixes for namespaces a file does not declare yet.
PREFERRED_PREFIXES = {X: "x", RDF: "rdf", XMP: "xmp", MICROSOFT_PHOTO: "MicrosoftPhoto"}

_DESCRIPTION = f"{{{RDF}}}Description"
_DECLARATION = re.compile(r"\A\s*(<\?xml\s[^>]*\?>)")
_DOCTYPE = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
# Characters XML 1.0 cannot hold, even escaped: they are dropped from values we write.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Real packets nest a dozen levels (darktable's history: 6); far below Python's recursion limit.
MAX_DEPTH = 200
_MULTI_LINE_FROM = 4  # attributes + declarations on one element before each gets its own line

EMPTY_PACKET = f"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="{X}" x:xmptk="eat-curate">
 <rdf:RDF xmlns:rdf="{RDF}">
  <rdf:Description rdf:about=""/>
 </rdf:RDF>
</x:xmpmeta>
""".encode()


class XmpError(ValueError):
    """The bytes are not an XMP packet this module can edit without risk; they are left as they are."""


class _Builder(ET.TreeBuilder):
    """A tree builder that also keeps what ElementTree drops: namespace declarations per element,
    and the comments and processing instructions outside the root (an ``xpacket`` wrapper)."""

    def __init__(self) -> None:
        super().__init__(insert_comments=True, insert_pis=True)
        self.declared: dict[ET.Element, list[tuple[str, str]]] = {}
        self.before_root: list[ET.Element] = []
        self.after_root: list[ET.Element] = []
        self._pending: list[tuple[str, str]] = []
        self._depth = 0
        self._root_seen = False

    def doctype(self, name: str, pubid: str, system: str) -> None:
        raise XmpError("holds a DOCTYPE (refused: XMP has none, and entities can be abused)")

    def start_ns(self, prefix: str, uri: str) -> None:
        self._pending.append((prefix, uri))

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        element = super().start(tag, attrs)
        if self._pending:
            self.declared[element] = self._pending
            self._pending = []
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise XmpError(f"elements nested deeper than {MAX_DEPTH} levels")
        self._root_seen = True
        return element

    def end(self, tag: str) -> ET.Element:
        self._depth -= 1
        return super().end(tag)

    def _outside(self, node: ET.Element) -> ET.Element:
        if self._depth == 0:
            (self.after_root if self._root_seen else self.before_root).append(node)
        return node

    def comment(self, text: str) -> ET.Element:
        return self._outside(super().comment(text))

    def pi(self, target: str, text: str | None = None) -> ET.Element:
        return self._outside(super().pi(target, text))


def clean_value(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry (control characters from a database, say)."""
    return _NOT_XML.sub("", value)


class XmpPacket:
    """One parsed XMP packet; ``get``/``set``/``remove`` properties by (namespace URI, name)."""

    def __init__(self, data: bytes = EMPTY_PACKET) -> None:
        text = _decode(data)
        if _DOCTYPE.search(text):
            raise XmpError("holds a DOCTYPE or ENTITY declaration (refused: XMP has none, and entities can be abused)")
        declaration = _DECLARATION.match(text)
        self._declaration = declaration.group(1) if declaration else None
        self._builder = _Builder()
        parser = ET.XMLParser(target=self._builder)
        try:
            parser.feed(text)
            self.root: ET.Element = parser.close()
        except ET.ParseError as error:
            raise XmpError(f"not well-formed XML ({error})") from None
        self._rdf = self._find_rdf()

    def _find_rdf(self) -> ET.Element:
        rdf_tag = f"{{{RDF}}}RDF"
        if self.root.tag == rdf_tag:
            return self.root
        if self.root.tag == f"{{{X}}}xmpmeta":
            found = self.root.find(rdf_tag)
            if found is not None:
                return found
        raise XmpError(f"no rdf:RDF under x:xmpmeta (root element {self.root.tag!r})")

    # --- properties ---------------------------------------------------------------------------

    def _descriptions(self) -> list[ET.Element]:
        return [child for child in self._rdf if child.tag == _DESCRIPTION]

    def _elements(self, key: str) -> Iterator[tuple[ET.Element, ET.Element]]:
        for description in self._descriptions():
            for child in description:
                if child.tag == key:
                    yield description, child

    def get(self, namespace: str, name: str) -> str | None:
        """The property's value, from an attribute or a simple element; None when absent."""
        key = f"{{{namespace}}}{name}"
        for description in self._descriptions():
            if key in description.attrib:
                return description.attrib[key]
        for _, element in self._elements(key):
            if len(element) == 0:
                return (element.text or "").strip()
        return None

    def present(self, namespace: str, name: str) -> bool:
        """Whether the packet holds the property in any form, a structure (``rdf:Seq``, ...) included."""
        key = f"{{{namespace}}}{name}"
        return any(key in description.attrib for description in self._descriptions()) or any(
            True for _ in self._elements(key)
        )

    def set(self, namespace: str, name: str, value: str) -> None:
        """Give the property ``value`` where it already is (attribute or element), else as a new attribute."""
        key = f"{{{namespace}}}{name}"
        value = clean_value(value)
        placed = False
        for description in self._descriptions():
            if key in description.attrib:
                if placed:
                    del description.attrib[key]  # a property appears once in a packet
                else:
                    description.attrib[key] = value
                    placed = True
        for description, element in list(self._elements(key)):
            if not placed and len(element) == 0 and not _has_rdf_attributes(element):
                element.text = value
                placed = True
            else:
                _remove_child(description, element)
        if not placed:
            self._first_description().attrib[key] = value

    def remove(self, namespace: str, name: str) -> None:
        key = f"{{{namespace}}}{name}"
        for description in self._descriptions():
            description.attrib.pop(key, None)
        for description, element in list(self._elements(key)):
            _remove_child(description, element)

    def _first_description(self) -> ET.Element:
        descriptions = self._descriptions()
        if descriptions:
            return descriptions[0]
        description = ET.SubElement(self._rdf, _DESCRIPTION, {f"{{{RDF}}}about": ""})
        description.tail = self._rdf.text if self._rdf.text and not self._rdf.text.strip() else None
        return description

    # --- writing ------------------------------------------------------------------------------

    def to_bytes(self, preferred_prefixes: dict[str, str] | None = None) -> bytes:
        """The packet as UTF-8 XML (see module doc); ``preferred_prefixes``: URI -> prefix for new namespaces."""
        writer = _Writer(self._builder.declared, {**PREFERRED_PREFIXES, **(preferred_prefixes or {})})
        parts: list[str] = []
        if self._declaration:
            parts.append(self._declaration + "\n")
        for node in self._builder.before_root:
            parts.append(writer.special(node) + "\n")
        writer.element(self.root, {"xml": XML}, parts)
        for node in self._builder.after_root:
            parts.append("\n" + writer.special(node))
        parts.append("\n")
        return "".join(parts).encode("utf-8")


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise XmpError(f"not UTF-8 ({error.reason} at byte {error.start})") from None
    declaration = _DECLARATION.match(text)
    if declaration:
        encoding = re.search(r"""encoding\s*=\s*["']([^"']+)["']""", declaration.group(1))
        if encoding and encoding.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise XmpError(f"declares encoding {encoding.group(1)!r}; only UTF-8 sidecars are edited")
    return text


def _has_rdf_attributes(element: ET.Element) -> bool:
    """``rdf:resource``, ``rdf:parseType`` and the like make an element more than a plain value."""
    return any(name.startswith(f"{{{RDF}}}") for name in element.attrib)


def _remove_child(parent: ET.Element, child: ET.Element) -> None:
    """Remove ``child``, keeping the whitespace that led to what follows it."""
    index = list(parent).index(child)
    if index > 0:
        parent[index - 1].tail = child.tail
    else:
        parent.text = child.tail
    parent.remove(child)


class _Writer:
    """Serialises a tree with the declarations each element made when read, adding any a new name needs."""

    def __init__(self, declared: dict[ET.Element, list[tuple[str, str]]], preferred: dict[str, str]) -> None:
        self.declared = declared
        self.preferred = preferred

    def special(self, node: ET.Element) -> str:
        if node.tag is ET.Comment:
            return f"<!--{node.text or ''}-->"
        return f"<?{node.text or ''}?>"

    def element(self, node: ET.Element, scope: dict[str, str], out: list[str], indent: str = "") -> None:
        """Append ``node`` (and its tail is the caller's); ``scope``: prefix -> URI in force."""
        if node.tag is ET.Comment or node.tag is ET.ProcessingInstruction:
            out.append(self.special(node))
            return
        scope = dict(scope)
        declarations: list[tuple[str, str]] = []
        for prefix, uri in self.declared.get(node, []):
            scope[prefix] = uri
            declarations.append((prefix, uri))
        tag = self._name(node.tag, scope, declarations, element=True)
        attributes = [
            (self._name(name, scope, declarations, element=False), value) for name, value in node.attrib.items()
        ]
        items = [("xmlns" if not prefix else f"xmlns:{prefix}", uri) for prefix, uri in declarations] + attributes
        separator = f"\n{indent}    " if len(items) >= _MULTI_LINE_FROM else " "
        opening = tag + "".join(f'{separator}{name}="{_escape_attribute(value)}"' for name, value in items)
        if node.text is None and len(node) == 0:
            out.append(f"<{opening}/>")
            return
        out.append(f"<{opening}>")
        before = node.text or ""  # the text written just before the next child
        out.append(_escape_text(before))
        for child in node:
            self.element(child, scope, out, _indent_after(before))
            before = child.tail or ""
            out.append(_escape_text(before))
        out.append(f"</{tag}>")

    def _name(self, name: str, scope: dict[str, str], declarations: list[tuple[str, str]], element: bool) -> str:
        """``{uri}local`` as ``prefix:local``, declaring a prefix on this element when none is in scope."""
        if not name.startswith("{"):
            if element and scope.get("", ""):
                raise XmpError(f"cannot write the unqualified element {name!r} under a default namespace")
            return name
        uri, local = name[1:].split("}", 1)
        candidates = [prefix for prefix, bound in scope.items() if bound == uri and (prefix or element)]
        if candidates:  # every one is bound to ``uri`` here, so any is right; the file's own comes first
            return f"{candidates[-1]}:{local}" if candidates[-1] else local
        prefix = self._free_prefix(uri, scope)
        scope[prefix] = uri
        declarations.append((prefix, uri))
        return f"{prefix}:{local}"

    def _free_prefix(self, uri: str, scope: dict[str, str]) -> str:
        base = self.preferred.get(uri, "ns")
        prefix, number = base, 1
        while prefix in scope or prefix.lower().startswith("xml"):
            prefix, number = f"{base}{number}", number + 1
        return prefix


def _indent_after(text: str) -> str:
    """The indentation an element gets from the text before it (what follows the last newline)."""
    last_line = text.rsplit("\n", 1)[-1]
    return last_line if not last_line.strip() else ""


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _escape_attribute(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )
