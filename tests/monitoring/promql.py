"""The metric names a PromQL expression reads: enough of PromQL's grammar for dashboards and rules."""

import re

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
KEYWORDS |= {"and", "or", "unless", "inf", "nan", "atan2"}
STRING = re.compile(r'"(?:\\.|[^"\\])*"' + r"|'(?:\\.|[^'\\])*'")
MATCHERS = re.compile(r"\{[^}]*\}")
RANGES = re.compile(r"\[[^\]]*\]")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
NUMBER = re.compile(r"(?<![\w:])\d[\w.]*")
VARIABLE = re.compile(r"\$\{?\w+\}?")
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    for pattern in (STRING, MATCHERS, RANGES, GROUPING, VARIABLE, NUMBER):
        expr = pattern.sub(" ", expr)
    names = set()
    for match in IDENTIFIER.finditer(expr):
        token = match.group(0)
        is_call = expr[match.end() :].lstrip().startswith("(")
        if not is_call and token.lower() not in KEYWORDS:
            names.add(token)
    return names
