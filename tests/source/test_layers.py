#!/usr/bin/env python3
"""The layer map in the README's Layout section, held against every #include in agent/.

A module (agent/NAME.c and agent/NAME.h) may include modules of its own layer
or below; no two modules may include each other, directly or round a cycle;
every module is on the map exactly once.
"""
import os
import re
import unittest

SRCDIR = os.environ.get("ASG_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MAP_LINE = re.compile(r"^\s+(\d+)\s+([a-z-]+)\s+((?:[a-z0-9_]+(?:\.h)?\s*)+)$")
MORE_LINE = re.compile(r"^\s{4,}((?:[a-z0-9_]+(?:\.h)?\s*)+)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z0-9_]+)\.h"', re.M)


def read_map(readme_text):
    """{module: (layer number, layer name)} from the fenced block that follows 'Layers,'."""
    layers, seen, inside, last = {}, {}, False, None
    for line in readme_text.splitlines():
        if line.startswith("Layers,"):
            inside = True
            continue
        if inside and line.startswith("```"):
            if layers:
                break
            continue
        if not inside:
            continue
        m = MAP_LINE.match(line)
        if m is not None:
            last, names = (int(m.group(1)), m.group(2)), m.group(3)
        elif last is not None and MORE_LINE.match(line):
            names = line    # a layer's list goes on on the next line
        else:
            continue
        for mod in names.split():
            mod = mod[:-2] if mod.endswith(".h") else mod
            seen[mod] = seen.get(mod, 0) + 1
            layers[mod] = last
    twice = sorted(k for k, n in seen.items() if n > 1)
    return layers, twice


def read_includes(agent_dir):
    """{module: {included module: first file that includes it}}."""
    graph = {}
    for name in sorted(os.listdir(agent_dir)):
        base, ext = os.path.splitext(name)
        if ext not in (".c", ".h"):
            continue
        with open(os.path.join(agent_dir, name), encoding="utf-8") as f:
            text = f.read()
        edges = graph.setdefault(base, {})
        for inc in INCLUDE.findall(text):
            if inc != base:
                edges.setdefault(inc, name)
    return graph


def problems(layers, graph):
    """Every breach of the map, one sentence each."""
    out = []
    for mod in sorted(graph):
        if mod not in layers:
            out.append(f"agent/{mod}: not on the README's layer map")
    for mod in sorted(graph):
        for inc, where in sorted(graph[mod].items()):
            if inc not in graph:
                out.append(f"agent/{where} includes {inc}.h, which is not in agent/")
                continue
            if mod in layers and inc in layers and layers[inc][0] > layers[mod][0]:
                out.append(f"agent/{where} includes {inc}.h: points up a layer "
                           f"({mod} is layer {layers[mod][0]} {layers[mod][1]}, "
                           f"{inc} is layer {layers[inc][0]} {layers[inc][1]})")
    out.extend(cycles(graph))
    return out


def cycles(graph):
    """Each include cycle once, as 'a -> b -> a'."""
    found, state = [], {}

    def visit(mod, path):
        state[mod] = 1
        for inc in sorted(graph.get(mod, {})):
            if inc not in graph:
                continue
            if state.get(inc) == 1:
                loop = path[path.index(inc):] + [inc]
                found.append("include cycle: " + " -> ".join(loop))
            elif inc not in state:
                visit(inc, path + [inc])
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    return found


class Layers(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(SRCDIR, "README.md"), encoding="utf-8") as f:
            self.layers, self.twice = read_map(f.read())
        self.graph = read_includes(os.path.join(SRCDIR, "agent"))

    def test_map_is_there(self):
        self.assertGreaterEqual(len(self.layers), 20,
                                f"README layer map: found only {sorted(self.layers)}")
        self.assertEqual(self.twice, [], "modules on the map more than once")

    def test_map_names_only_modules(self):
        stale = sorted(set(self.layers) - set(self.graph))
        self.assertEqual(stale, [], "on the README's map but not in agent/")

    def test_includes_follow_the_map(self):
        found = problems(self.layers, self.graph)
        self.assertEqual(found, [], "\n" + "\n".join(found))


class Checker(unittest.TestCase):
    """The checker itself catches what it is for, on a made-up tree."""

    def test_catches_upward_include_cycle_and_unmapped(self):
        layers, twice = read_map(
            "Layers, bottom to top:\n```\n  1 top     boot serve\n  0 base    util\n```\n")
        self.assertEqual(twice, [])
        graph = {"util": {"boot": "util.c"}, "boot": {"serve": "boot.c", "util": "boot.c"},
                 "serve": {"boot": "serve.c"}, "extra": {}}
        found = problems(layers, graph)
        want = [
            "agent/extra: not on the README's layer map",
            "agent/util.c includes boot.h: points up a layer (util is layer 0 base, "
            "boot is layer 1 top)",
            "include cycle: boot -> serve -> boot",
            "include cycle: boot -> util -> boot",
        ]
        self.assertEqual(sorted(found), sorted(want))

    def test_clean_tree_passes(self):
        layers, _ = read_map("Layers,\n```\n  1 top   boot\n          serve\n"
                             "  0 base  util log.h\n```\n")
        self.assertEqual(layers, {"boot": (1, "top"), "serve": (1, "top"), "util": (0, "base"),
                                  "log": (0, "base")})
        self.assertEqual(problems(layers, {"boot": {"util": "boot.c"}, "serve": {}, "util": {},
                                           "log": {"util": "log.c"}}), [])


if __name__ == "__main__":
    unittest.main()
