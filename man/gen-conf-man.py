#!/usr/bin/env python3
"""Generate man/asg-agent.conf.5 from agent/config.c's option table.

    python3 man/gen-conf-man.py            rewrite man/asg-agent.conf.5
    python3 man/gen-conf-man.py --check    exit 1 if man/asg-agent.conf.5 is stale
    python3 man/gen-conf-man.py --stdout   print the page

The prose lives in man/asg-agent.conf.5.in. Its line "@OPTIONS@" becomes one
entry per option of the table in agent/config.c (type, range, default, whether
SIGHUP applies it, the help text), grouped by section, and "@RELOAD@" becomes
the list of options SIGHUP applies. A block

    .\\" @extra SECTION.KEY
    ...roff...
    .\\" @end

in the template is moved under that option's entry. Run it after changing the
option table; tests/integration/test_packaging.py fails while the page is stale.
Only the Python 3 standard library is used.
"""
import os
import re
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
CONFIG_C = os.path.join(SRCDIR, "agent", "config.c")
TEMPLATE = os.path.join(HERE, "asg-agent.conf.5.in")
OUTPUT = os.path.join(HERE, "asg-agent.conf.5")

STR = r'(?:"(?:[^"\\]|\\.)*"\s*)+'
ENTRY = re.compile(
    r'\{\s*"(?P<section>\w+)",\s*"(?P<key>\w+)",\s*(?P<type>OPT_\w+),\s*O\(\w+\),\s*'
    r'(?P<min>[^,]+),\s*(?P<max>[^,]+),\s*(?P<def>' + STR + r'),\s*(?P<choices>\w+),\s*'
    r'(?P<help>' + STR + r'),\s*(?P<reload>\d)\s*\}', re.S)
CHOICES = re.compile(r'static\s+const\s+char\s*\*\s*const\s+(\w+)\[\]\s*=\s*\{([^}]*)\}')


def c_string(text):
    """The value of one or more adjacent C string literals."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
    return "".join(bytes(p, "utf-8").decode("unicode_escape") for p in parts)


def c_int(text):
    text = text.strip().replace("LL", "").replace("UL", "").replace("L", "")
    if not re.fullmatch(r"[0-9 <()+*-]+", text):
        raise ValueError(f"cannot read the bound {text!r}")
    return int(eval(text, {"__builtins__": {}}))  # digits and << only


def parse(path=CONFIG_C):
    with open(path, encoding="utf-8") as f:
        src = f.read()
    start = src.index("static const struct opt opts[]")
    end = src.index("\n};", start)
    table = src[start:end]
    choices = {m.group(1): re.findall(r'"([^"]*)"', m.group(2))
               for m in CHOICES.finditer(src)}
    opts = []
    for m in ENTRY.finditer(table):
        o = m.groupdict()
        opts.append({
            "section": o["section"], "key": o["key"], "type": o["type"],
            "min": c_int(o["min"]), "max": c_int(o["max"]),
            "default": c_string(o["def"]),
            "choices": choices.get(o["choices"], []),
            "help": c_string(o["help"]), "reload": o["reload"] == "1",
        })
    # Every entry of the table must have been read: count the O() offsets.
    expected = len(re.findall(r"\bO\(\w+\)", table))
    if len(opts) != expected:
        raise SystemExit(f"gen-conf-man: read {len(opts)} of {expected} options in {path}; "
                         "the table's layout changed, update ENTRY")
    return opts


def roff(text):
    """Escape text for a roff line (not at the start of a request)."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text[:1] in (".", "'"):
        text = "\\&" + text
    return text


def size(n):
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def describe_type(o):
    t = o["type"]
    if t == "OPT_STRING":
        return "string"
    if t == "OPT_INT":
        return f"integer, {o['min']} to {o['max']}"
    if t == "OPT_SIZE":
        return f"size, {size(o['min'])} to {size(o['max'])}"
    if t == "OPT_BOOL":
        return "boolean"
    if t == "OPT_ENUM":
        return "one of " + ", ".join(o["choices"])
    if t == "OPT_LEVEL":
        return "one of error, warn, info, debug"
    raise SystemExit(f"gen-conf-man: unknown option type {t}")


def text_lines(text):
    """Escaped roff text lines of at most 78 characters."""
    words = textwrap.wrap(text, 78, break_long_words=False, break_on_hyphens=False)
    return [roff(w) for w in words]


def entry(o, extra):
    value = {"OPT_STRING": "string", "OPT_INT": "n", "OPT_SIZE": "size",
             "OPT_BOOL": "yes|no", "OPT_ENUM": "|".join(o["choices"]),
             "OPT_LEVEL": "error|warn|info|debug"}[o["type"]]
    default = "empty" if o["default"] == "" else "\\fB" + roff(o["default"]) + "\\fR"
    lines = [".TP", f".BI {o['key']} \" = \" {roff(value)}"]
    lines += text_lines(o["help"] + ".")
    lines += [".br", f"Type: {roff(describe_type(o))}.", f"Default: {default}.",
              "Reloaded by SIGHUP." if o["reload"] else "Read at start only."]
    if extra:
        lines += [".IP"] + extra
    return lines


def generate(opts, template):
    extras, body, cur = {}, [], None
    for line in template.splitlines():
        m = re.match(r'^\.\\"\s*@extra\s+(\w+)\.(\w+)\s*$', line)
        if m:
            cur = extras.setdefault((m.group(1), m.group(2)), [])
            continue
        if cur is not None:
            if re.match(r'^\.\\"\s*@end\s*$', line):
                cur = None
            else:
                cur.append(line)
            continue
        body.append(line)
    known = {(o["section"], o["key"]) for o in opts}
    for k in extras:
        if k not in known:
            raise SystemExit(f"gen-conf-man: @extra for unknown option {k[0]}.{k[1]}")
    out = ['.\\" Generated by man/gen-conf-man.py from man/asg-agent.conf.5.in and',
           '.\\" agent/config.c: edit those, then run python3 man/gen-conf-man.py.']
    for line in body:
        if line.strip() == "@OPTIONS@":
            section = None
            for o in opts:
                if o["section"] != section:
                    section = o["section"]
                    out += [f".SS [{section}]"]
                out += entry(o, extras.get((o["section"], o["key"])))
        elif line.strip() == "@RELOAD@":
            for o in opts:
                if o["reload"]:
                    out += [".IP \\(bu 2", f"[{o['section']}] {o['key']}"]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def main(argv):
    with open(TEMPLATE, encoding="utf-8") as f:
        page = generate(parse(), f.read())
    if "--stdout" in argv:
        sys.stdout.write(page)
        return 0
    if "--check" in argv:
        try:
            with open(OUTPUT, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != page:
            print(f"{OUTPUT} is stale: run python3 man/gen-conf-man.py", file=sys.stderr)
            return 1
        return 0
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
