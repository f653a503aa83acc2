"""CSV cells a spreadsheet will not run as formulas (CSV injection), for every export.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return
before one). It also splits a cell on its own list separator, not the file's: pt-BR Excel splits
on `;`, so `a;=HYPERLINK(…)` written in a comma file becomes a second cell that is a formula. The
guard therefore neutralises a formula start at the beginning of the text and after any separator
a spreadsheet may split on (`,` `;` tab, line breaks, `|`), by putting `'` (Excel's "text" mark)
in front of it. Integers pass as numbers; everything else becomes text.
"""

import re

FORMULA_START = re.compile(r"(^|[,;|\t\r\n])([ \t\r\n]*)(?=[=+\-@])")
CONTROL_START = ("\t", "\r")


def csv_cell(value) -> str | int:
    if value is None:
        return ""
    if isinstance(value, bool | int):
        return int(value)
    text = FORMULA_START.sub(r"\1\2'", str(value))
    return "'" + text if text.startswith(CONTROL_START) else text
