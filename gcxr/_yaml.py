"""YAML loading with a bound on alias expansion (no "billion laughs").

PyYAML builds an aliased node once and shares it, so loading nested anchors is cheap; but
everything that walks the result afterwards (validation, copies, printing) walks every
expanded path, which grows exponentially with the nesting depth: ten levels of ten aliases
are 10**10 values.  :func:`load_yaml` composes the document, counts the nodes it stands for
once aliases are expanded (each shared node counted once per reference, in time linear in the
document), and refuses documents over ``max_nodes`` before constructing anything.
"""
from __future__ import annotations

import yaml

__all__ = ["load_yaml", "MAX_YAML_NODES", "YAMLSizeError"]

MAX_YAML_NODES = 1_000_000
"""The most nodes a configuration or models document may expand to (aliases expanded)."""


class YAMLSizeError(yaml.YAMLError):
    """A document whose aliases expand to more than the allowed number of nodes, or refer to themselves."""


def expanded_size(node: yaml.Node, limit: int) -> int:
    """Number of nodes in ``node`` with aliases expanded; raises :class:`YAMLSizeError` above ``limit``."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise YAMLSizeError(f"line {n.start_mark.line + 1}: an alias refers to the node that contains it")
        active.add(key)
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(size(c) for c in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in n.value)
        active.discard(key)
        if total > limit:
            raise YAMLSizeError(f"the document expands to more than {limit:,} values once its aliases (*name) "
                                f"are expanded (nested anchors, a 'billion laughs'); write the values out")
        sizes[key] = total
        return total
    return size(node)


def load_yaml(text: str, Loader=yaml.SafeLoader, max_nodes: int = MAX_YAML_NODES):
    """``yaml.load(text, Loader)`` for one document, refusing one that expands to over ``max_nodes`` nodes.

    Raises
    ------
    yaml.YAMLError
        A syntax error, or :class:`YAMLSizeError` for a document too large once aliases are expanded.
    """
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node, max_nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()
