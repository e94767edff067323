"""Parser for Fabric's signature-policy syntax, with errors that point at the column.

Grammar (keywords case-insensitive, quotes single or double)::

    policy    := gate | principal
    gate      := ("AND" | "OR") "(" policy ("," policy)* ")"
               | "OutOf" "(" INT "," policy ("," policy)* ")"
    principal := QUOTE MSPID "." ROLE QUOTE
"""

from __future__ import annotations

import re

from cctvchain.policy.ast import ROLES, OutOf, Policy, Principal

MAX_LENGTH = 4096
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<bare>[A-Za-z0-9_\-]+\.[A-Za-z]+)
      | (?P<name>[A-Za-z]+)
      | (?P<int>\d+)
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_MSP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")


class PolicyParseError(ValueError):
    """The policy text is not valid; ``column`` is 1-based."""

    def __init__(self, text: str, column: int, reason: str) -> None:
        super().__init__(f"{reason} at column {column} of policy {text!r}")
        self.text = text
        self.column = column
        self.reason = reason


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None or match.lastgroup is None:
                column = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
                raise PolicyParseError(text, column, f"unexpected character {text[column - 1]!r}")
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind), match.start(kind) + 1))
            pos = match.end()
        self.index = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self, expected: str) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise PolicyParseError(self.text, len(self.text) + 1, f"expected {expected}, got end")
        self.index += 1
        return token

    def _expect_punct(self, char: str) -> None:
        kind, value, column = self._next(f"{char!r}")
        if kind != "punct" or value != char:
            raise PolicyParseError(self.text, column, f"expected {char!r}, got {value!r}")

    def parse(self) -> Policy:
        if not self.tokens:
            raise PolicyParseError(self.text, 1, "empty policy")
        policy = self._policy(0)
        token = self._peek()
        if token is not None:
            raise PolicyParseError(self.text, token[2], f"unexpected {token[1]!r} after policy")
        return policy

    def _policy(self, depth: int) -> Policy:
        if depth > MAX_DEPTH:
            token = self._peek()
            raise PolicyParseError(
                self.text, token[2] if token else 1, f"nested deeper than {MAX_DEPTH}"
            )
        kind, value, column = self._next("a principal or AND/OR/OutOf")
        if kind == "string":
            return self._principal(value, column)
        if kind == "bare":
            raise PolicyParseError(
                self.text, column, f"principal {value} must be quoted: '{value}'"
            )
        if kind != "name":
            raise PolicyParseError(
                self.text, column, f"expected a principal or AND/OR/OutOf, got {value!r}"
            )
        keyword = value.lower()
        if keyword not in ("and", "or", "outof"):
            raise PolicyParseError(
                self.text, column, f"unknown operator {value!r} (expected AND, OR or OutOf)"
            )
        self._expect_punct("(")
        threshold: int | None = None
        threshold_column = column
        if keyword == "outof":
            kind, number, threshold_column = self._next("a threshold")
            if kind != "int":
                raise PolicyParseError(
                    self.text, threshold_column, f"OutOf needs an integer threshold, got {number!r}"
                )
            threshold = int(number)
            self._expect_punct(",")
        rules = [self._policy(depth + 1)]
        while True:
            kind, punct, punct_column = self._next("',' or ')'")
            if kind == "punct" and punct == ")":
                break
            if kind != "punct" or punct != ",":
                raise PolicyParseError(
                    self.text, punct_column, f"expected ',' or ')', got {punct!r}"
                )
            rules.append(self._policy(depth + 1))
        if keyword == "and":
            threshold = len(rules)
        elif keyword == "or":
            threshold = 1
        assert threshold is not None
        if not 1 <= threshold <= len(rules):
            raise PolicyParseError(
                self.text,
                threshold_column,
                f"OutOf threshold {threshold} must be between 1 and the {len(rules)} sub-policies",
            )
        return OutOf(threshold, tuple(rules))

    def _principal(self, quoted: str, column: int) -> Principal:
        body = quoted[1:-1]
        msp_id, dot, role = body.rpartition(".")
        if not dot or not msp_id:
            raise PolicyParseError(
                self.text, column, f"principal {quoted} must have the form 'MSPID.role'"
            )
        if not _MSP_ID.fullmatch(msp_id):
            raise PolicyParseError(self.text, column, f"invalid MSP id {msp_id!r} in {quoted}")
        if role not in ROLES:
            raise PolicyParseError(
                self.text,
                column,
                f"unknown role {role!r} in {quoted} (expected one of {', '.join(ROLES)})",
            )
        return Principal(msp_id, role)


def parse_policy(text: str) -> Policy:
    """Parse a policy such as ``OutOf(2, 'CityCCTV.peer', 'Police.peer')``."""
    if len(text) > MAX_LENGTH:
        raise PolicyParseError(text[:40] + "...", 1, f"policy longer than {MAX_LENGTH} characters")
    return _Parser(text).parse()
