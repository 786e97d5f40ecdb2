"""Longest-prefix match of destinations over digit tries, on Arrow string buffers.

Several tariffs share one node table; each row names the root of its tariff's trie. A
node may hold several entries, the versions of one prefix ordered by `effective_from`;
the match is the longest prefix that has a version in force at the row's start. A
character other than a digit ends the walk (names and APNs match only the empty prefix).
"""

from __future__ import annotations

import numba as nb
import numpy as np

NO_MATCH = -1
ALWAYS = np.iinfo(np.int64).min  # effective_from of an entry without a date


class Trie:
    """Digit tries of several tariffs in flat arrays."""

    def __init__(self) -> None:
        self._children: list[list[int]] = []
        self._entries: list[list[tuple[int, int]]] = []  # per node: (effective_from, entry)

    def new_root(self) -> int:
        self._children.append([-1] * 10)
        self._entries.append([])
        return len(self._children) - 1

    def insert(self, root: int, prefix: str, entry: int, effective_from: int = ALWAYS) -> None:
        node = root
        for ch in prefix:
            digit = ord(ch) - 48
            nxt = self._children[node][digit]
            if nxt < 0:
                nxt = self.new_root()
                self._children[node][digit] = nxt
            node = nxt
        self._entries[node].append((effective_from, entry))

    def arrays(self):
        """(children int32[n, 10], node_start int32[n], node_count int32[n],
        entry_ids int32[m], entry_from int64[m]) with each node's entries by effective_from."""
        children = np.array(self._children, dtype=np.int32).reshape(-1, 10)
        starts = np.zeros(len(self._entries), dtype=np.int32)
        counts = np.zeros(len(self._entries), dtype=np.int32)
        ids, froms = [], []
        for node, entries in enumerate(self._entries):
            starts[node] = len(ids)
            counts[node] = len(entries)
            for eff, entry in sorted(entries):
                ids.append(entry)
                froms.append(eff)
        return (children, starts, counts, np.array(ids, dtype=np.int32),
                np.array(froms, dtype=np.int64))


@nb.njit(cache=True, inline="always")
def _in_force(node, at, mask, starts, counts, entry_from, entry_ids, entry_mask):
    """The node's version in force at ``at`` if one of its bands is in force (``mask``)."""
    latest = NO_MATCH
    for k in range(starts[node], starts[node] + counts[node]):
        if entry_from[k] <= at:
            latest = entry_ids[k]
    if latest != NO_MATCH and entry_mask[latest] & mask:
        return latest
    return NO_MATCH


@nb.njit(parallel=True, nogil=True, cache=True)
def longest_prefix(offsets, data, roots, at, mask_at, children, starts, counts, entry_ids,
                   entry_from, entry_mask):
    """Entry matched by each row's destination (``data[offsets[i]:offsets[i+1]]``), or -1.

    ``roots[i]`` is the trie of row i's tariff (-1: none), ``at[i]`` its start (int64 µs)
    and ``mask_at[i]`` the bands in force then: a prefix counts only if its version in
    force has a band in force at the start; otherwise shorter prefixes are tried. A
    leading '+' is skipped.
    """
    n = len(roots)
    out = np.full(n, NO_MATCH, dtype=np.int32)
    for i in nb.prange(n):
        node = roots[i]
        if node < 0:
            continue
        best = _in_force(node, at[i], mask_at[i], starts, counts, entry_from, entry_ids,
                         entry_mask)
        first = offsets[i]
        if first < offsets[i + 1] and data[first] == 43:  # '+'
            first += 1
        for j in range(first, offsets[i + 1]):
            digit = data[j] - 48
            if digit < 0 or digit > 9:
                break
            node = children[node, digit]
            if node < 0:
                break
            found = _in_force(node, at[i], mask_at[i], starts, counts, entry_from, entry_ids,
                              entry_mask)
            if found != NO_MATCH:
                best = found
        out[i] = best
    return out


def longest_prefix_reference(destinations, tariffs, at, masks, table, entry_mask):
    """The specification: ``table[tariff]`` maps prefix -> [(effective_from, entry)]; each
    destination takes the longest of its digit prefixes (after a leading '+') whose
    version in force at ``at`` has a band in ``masks`` (``entry_mask[entry] & mask``)."""
    out = []
    for dest, tariff, when, mask in zip(destinations, tariffs, at, masks, strict=True):
        if tariff < 0:
            out.append(NO_MATCH)
            continue
        digits = ""
        for ch in (dest or "").removeprefix("+"):
            if not ch.isdigit() or not ch.isascii():
                break
            digits += ch
        found = NO_MATCH
        for length in range(len(digits), -1, -1):
            versions = [(e, x) for e, x in table[tariff].get(digits[:length], []) if e <= when]
            if versions and entry_mask[max(versions)[1]] & mask:
                found = max(versions)[1]
                break
        out.append(found)
    return np.array(out, dtype=np.int32)
