"""String tests as byte automata, so the kernel can run every one of them in one loop.

`==`, `in (...)`, `startswith`, `endswith`, `~=` and `glob` all become a
deterministic automaton over bytes whose transition table lives in a map;
the program walks it over the string (one table load per byte) and stops
early as soon as the answer cannot change. The automaton is minimised and
numbered so that the program needs no per-automaton code:

* state 0 rejects whatever follows (dead), state 1 accepts whatever
  follows (the rest of `~= "x"` once "x" was seen), the walk starts in 2;
* row 0 of the table, unused for transitions since the walk stops in 0,
  holds the accept flag of every state.

Glob semantics are Python's `fnmatch.translate` (what `rules.values` uses):
bracket expressions are tokenised the way it does, and the byte set of each
one is taken from the regular expression it translates to, so the two
engines cannot disagree about `[!a-]`, `[]]` or `[z-a]`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

DEAD, ACCEPT_ALL, START = 0, 1, 2
MAX_STATES = 256  # next states are stored as one byte
_ANY = frozenset(range(256))
STAR = None  # a token: any run of bytes


class PatternTooComplex(ValueError):
    """The automaton would need more states than a byte can number."""


Token = frozenset[int] | None


def literal(text: bytes) -> list[Token]:
    return [frozenset((b,)) for b in text]


def glob_tokens(pattern: bytes) -> list[Token]:
    """`pattern` as fnmatch reads it: byte sets, and STAR for every run of `*`."""
    pat = pattern.decode("latin-1")
    out: list[Token] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        i += 1
        if c == "*":
            if not out or out[-1] is not STAR:
                out.append(STAR)
        elif c == "?":
            out.append(_ANY)
        elif c == "[":
            j = i
            if j < n and pat[j] == "!":
                j += 1
            if j < n and pat[j] == "]":
                j += 1
            while j < n and pat[j] != "]":
                j += 1
            if j >= n:
                out.append(frozenset((ord("["),)))
            else:
                out.append(_bracket_set(pat[i - 1:j + 1]))
                i = j + 1
        else:
            out.append(frozenset((ord(c),)))
    return out


def _bracket_set(bracket: str) -> frozenset[int]:
    match = re.compile(fnmatch.translate(bracket).encode("latin-1"), re.S).match
    return frozenset(b for b in range(256) if match(bytes((b,))))


@dataclass(frozen=True)
class DFA:
    """A minimised automaton: `rows[s][c]` is the next state, `accept[s]` its verdict."""

    rows: tuple[bytes, ...]
    accept: tuple[bool, ...]

    @property
    def states(self) -> int:
        return len(self.rows)

    def table(self) -> bytes:
        """The kernel's layout: row 0 holds accept flags, row s>0 the transitions of s."""
        flags = bytes(int(a) for a in self.accept).ljust(256, b"\0")
        return flags + b"".join(self.rows[1:])

    def run(self, data: bytes) -> bool:
        """The verdict for a whole string, exactly as the kernel's walk computes it."""
        state = START
        for byte in data:
            if state <= ACCEPT_ALL:
                break
            state = self.rows[state][byte]
        return self.accept[state]


def compile_dfa(alternatives: list[list[Token]]) -> DFA:
    """The minimal DFA accepting any of `alternatives` (token lists) over whole strings."""
    def closure(positions):
        out = set(positions)
        todo = list(positions)
        while todo:
            alt, pos = todo.pop()
            toks = alternatives[alt]
            if pos < len(toks) and toks[pos] is STAR and (alt, pos + 1) not in out:
                out.add((alt, pos + 1))
                todo.append((alt, pos + 1))
        return frozenset(out)

    def accepting(state):
        return any(pos == len(alternatives[alt]) for alt, pos in state)

    start = closure({(a, 0) for a in range(len(alternatives))})
    index = {start: 0}
    order = [start]
    trans: list[list[int]] = []
    while len(trans) < len(order):
        state = order[len(trans)]
        row = []
        for byte in range(256):
            nxt = set()
            for alt, pos in state:
                toks = alternatives[alt]
                if pos == len(toks):
                    continue
                tok = toks[pos]
                if tok is STAR:
                    nxt.add((alt, pos))
                elif byte in tok:
                    nxt.add((alt, pos + 1))
            target = closure(nxt)
            if target not in index:
                if len(order) >= 4 * MAX_STATES:
                    raise PatternTooComplex("more than a byte's worth of automaton states")
                index[target] = len(order)
                order.append(target)
            row.append(index[target])
        trans.append(row)
    return _minimise(trans, [accepting(s) for s in order])


def _minimise(trans: list[list[int]], accept: list[bool]) -> DFA:
    """Moore partition refinement, then the numbering the kernel walk relies on."""
    block = [int(a) for a in accept]
    while True:
        signature: dict = {}
        new = [signature.setdefault((block[s], tuple(block[t] for t in trans[s])), len(signature))
               for s in range(len(trans))]
        done = len(signature) == len(set(block))
        block = new
        if done:
            break
    count = len(set(block))
    rep: dict[int, int] = {}
    for s in range(len(trans)):
        rep.setdefault(block[s], s)

    def absorbing(b, verdict):
        s = rep[b]
        return accept[s] == verdict and all(block[t] == b for t in trans[s])

    numbering: dict[int, int] = {}
    for b in range(count):
        if absorbing(b, False):
            numbering[b] = DEAD
        elif absorbing(b, True):
            numbering[b] = ACCEPT_ALL
    start_block = block[0]
    if start_block not in numbering:
        numbering[start_block] = START
    for b in range(count):
        if b not in numbering:
            numbering[b] = max(START, *numbering.values()) + 1
    total = max(START, *numbering.values()) + 1
    if total > MAX_STATES:
        raise PatternTooComplex(f"the automaton needs {total} states, at most {MAX_STATES} fit")
    # Slots no block takes (no full state, or a start that is dead/full) get the
    # behaviour their number promises, so the walk needs no special case.
    rows = [bytes(256), bytes([ACCEPT_ALL]) * 256, b""] + [b""] * (total - 3)
    verdict = [False, True] + [False] * (total - 2)
    for b, s in numbering.items():
        rows[s] = bytes(numbering[block[t]] for t in trans[rep[b]])
        verdict[s] = accept[rep[b]]
    if numbering[start_block] != START:
        rows[START] = rows[numbering[start_block]]
        verdict[START] = verdict[numbering[start_block]]
    return DFA(tuple(rows), tuple(verdict))


def for_test(op: str, operand: bytes | tuple[bytes, ...]) -> DFA:
    """The automaton of one string test of the rule language."""
    if op == "in":
        return compile_dfa([literal(item) for item in operand])
    tokens = {
        "==": lambda s: literal(s),
        "startswith": lambda s: [*literal(s), STAR],
        "endswith": lambda s: [STAR, *literal(s)],
        "~=": lambda s: [STAR, *literal(s), STAR],
        "glob": glob_tokens,
    }[op](operand)
    return compile_dfa([tokens])
