#!/usr/bin/python3
"""Writes docs/sdk-reference.md, the reference of the Python SDK, from its
docstrings and signatures (python/valet, imported from the tree): every
public class and function of `valet.__all__`, and each public method.
`--check` (run by the test suite) fails when the page in docs/ is not what
the code gives now.

Usage: sdk-reference.py [--check]"""
import enum
import inspect
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "sdk-reference.md")
sys.path.insert(0, os.path.join(ROOT, "python"))

import valet  # noqa: E402

HEAD = """# valet (Python SDK): reference

Generated from the docstrings by `scripts/sdk-reference.py`; do not edit
(the test suite checks that it is current). The guide is `docs/sdk.md`.
"""


def doc(obj):
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""


def sig(fn):
    """The signature as written (the modules use postponed annotations, so
    annotations are the source's text)."""
    try:
        s = inspect.signature(fn)
    except (TypeError, ValueError):
        return "(...)"
    parts = []
    star = False
    for p in s.parameters.values():
        if p.kind == p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if p.kind == p.VAR_POSITIONAL:
            star = True
        text = ("*" if p.kind == p.VAR_POSITIONAL else "**" if p.kind == p.VAR_KEYWORD else "") + p.name
        if p.annotation is not p.empty:
            text += f": {p.annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    ret = f" -> {s.return_annotation}" if s.return_annotation is not s.empty else ""
    return f"({', '.join(parts)}){ret}"


def members(cls):
    out = []
    for name, attr in cls.__dict__.items():
        if name.startswith("_") and name not in ("__init__",):
            continue
        if isinstance(attr, property):
            out.append((name, None, doc(attr), "property"))
        elif inspect.isfunction(attr):
            kind = "async " if inspect.iscoroutinefunction(attr) or inspect.isasyncgenfunction(attr) else ""
            out.append((name, attr, doc(attr), kind))
    return out


def render():
    lines = [HEAD]
    groups = [("Connecting", ["Guest", "AsyncGuest", "Address", "parse_address", "wait_ready", "ReadyListener",
                              "MAITRED_PORT", "VSH_PORT", "STARTUP_LISTENER_PORT"]),
              ("Files", ["Files", "AsyncFiles"]),
              ("Processes", ["Process", "AsyncProcess"]),
              ("Tunnels and snapshots", ["Forward", "AsyncForward", "Frozen", "AsyncFrozen", "Network"])]
    done = {n for _, names in groups for n in names}
    errors = [n for n in valet.__all__ if isinstance(getattr(valet, n), type) and
              issubclass(getattr(valet, n), valet.Error)]
    types = [n for n in valet.__all__ if n not in done and n not in errors]
    groups += [("Types", types), ("Errors", errors)]
    for title, names in groups:
        lines.append(f"## {title}\n")
        for name in names:
            obj = getattr(valet, name)
            if isinstance(obj, type) and issubclass(obj, enum.Enum):
                values = ", ".join(f"`{m.name}` ({m.value})" for m in obj)
                lines.append(f"### `{name}` (enum)\n\n{doc(obj)}\n\n{values}\n")
            elif isinstance(obj, type) and issubclass(obj, BaseException):
                bases = ", ".join(b.__name__ for b in obj.__bases__)
                code = f" — status `{obj.code.name}`" if getattr(obj, "code", None) is not None else ""
                lines.append(f"### `{name}({bases})`{code}\n\n{doc(obj)}\n")
            elif isinstance(obj, type):
                init = obj.__dict__.get("__init__")
                s = sig(init).replace("(self, ", "(").replace("(self)", "()") if init else ""
                lines.append(f"### `class {name}{s}`\n\n{doc(obj)}\n")
                for mname, fn, mdoc, kind in members(obj):
                    if mname == "__init__":
                        continue
                    if kind == "property":
                        lines.append(f"- **`{mname}`** (property)" + (f": {mdoc}" if mdoc else ""))
                        continue
                    s = sig(fn).replace("(self, ", "(").replace("(self)", "()")
                    if mname in ("__enter__", "__exit__", "__aenter__", "__aexit__", "__await__"):
                        continue
                    text = mdoc.replace("\n", " ") if mdoc else ""
                    lines.append(f"- **`{kind}{mname}{s}`**" + (f"  \n  {text}" if text else ""))
                lines.append("")
            elif callable(obj):
                lines.append(f"### `{name}{sig(obj)}`\n\n{doc(obj)}\n")
            else:
                lines.append(f"### `{name}` = `{obj!r}`\n")
    return "\n".join(lines).rstrip() + "\n"


def main():
    text = render()
    if sys.argv[1:] == ["--check"]:
        have = open(OUT).read() if os.path.exists(OUT) else ""
        if have != text:
            print("docs/sdk-reference.md is not what the SDK's docstrings give (run scripts/sdk-reference.py)",
                  file=sys.stderr)
            return 1
        return 0
    with open(OUT, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
