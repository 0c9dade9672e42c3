"""apt_corpus.py - turns apt's package descriptions into Debezium-shaped change events.

The corpus is real text present on every Debian machine: `apt-cache dumpavail` (or a
Packages file given as argument).  Each package becomes a row of `debian.packages`
(id, name, section, synopsis, description); the stream has creates for every package,
then updates for a share of them (a revised description) and deletes for a few.

usage: apt_corpus.py [--limit N] [--seed S] [--packages FILE] [--lists DIR] > events.tsv
--lists DIR reads the Packages and Translation-en files apt keeps in DIR (compressed
or not, through apt-helper); the Translation files hold the long descriptions, which
`apt-cache dumpavail` lacks when apt is set to fetch no translations.
output: one `key<TAB>value` line per event (kcat -K '\\t'), empty value = tombstone.
When no package list is available, a small built-in generator is used instead.
"""
import argparse
import glob
import json
import os
import random
import subprocess
import sys


def cat_file(path):
    return subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], capture_output=True,
                          check=True, text=True, errors="replace").stdout


def translations(lists):
    """Package name -> long description text, from Translation-en files."""
    out = {}
    for f in sorted(glob.glob(os.path.join(lists, "*_i18n_Translation-en*"))):
        for stanza in cat_file(f).split("\n\n"):
            name, desc, key = None, None, None
            for line in stanza.split("\n"):
                if line.startswith("Package:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("Description-en:"):
                    desc, key = line.split(":", 1)[1].strip(), "d"
                elif line.startswith(" ") and key == "d":
                    desc += "\n" + line[1:]
                else:
                    key = None
            if name and desc and name not in out:
                out[name] = desc
    return out


def packages(path, lists=None):
    if lists:
        text = "\n\n".join(cat_file(f) for f in
                           sorted(glob.glob(os.path.join(lists, "*_binary-*_Packages*"))))
    elif path:
        text = open(path, encoding="utf-8", errors="replace").read()
    else:
        try:
            text = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, check=True,
                                  text=True, errors="replace").stdout
        except (OSError, subprocess.CalledProcessError):
            text = ""
    seen = set()
    for stanza in text.split("\n\n"):
        fields, key = {}, None
        for line in stanza.split("\n"):
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line[1:]
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        name = fields.get("Package")
        desc = fields.get("Description") or fields.get("Description-en")
        if name and name in LONG:
            desc = LONG[name]
        if not name or not desc or name in seen:
            continue
        seen.add(name)
        synopsis, _, long = desc.partition("\n")
        long = "\n".join("" if l.strip() == "." else l.strip() for l in long.split("\n")).strip()
        yield {"name": name, "section": fields.get("Section", "misc"),
               "synopsis": synopsis.strip(), "description": long or synopsis.strip()}


LONG = {}


def builtin(n, rng):
    things = ["editor", "compiler", "database", "web server", "image viewer", "shell",
              "library", "font", "game", "network tool", "backup tool", "debugger"]
    traits = ["fast", "small", "extensible", "graphical", "scriptable", "secure", "portable"]
    for i in range(n):
        t, a = rng.choice(things), rng.choice(traits)
        yield {"name": "sample-%s-%d" % (t.replace(" ", "-"), i), "section": "misc",
               "synopsis": "%s %s" % (a, t),
               "description": "A %s %s for everyday use, number %d." % (a, t, i)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--packages")
    ap.add_argument("--lists")
    ap.add_argument("--update-share", type=float, default=0.1)
    ap.add_argument("--delete-share", type=float, default=0.02)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    if args.lists:
        LONG.update(translations(args.lists))
    rows = list(packages(args.packages, args.lists))
    if not rows:
        print("apt package lists not found; using the built-in generator", file=sys.stderr)
        rows = list(builtin(args.limit or 2000, rng))
    if args.limit:
        rows = rows[:args.limit]
    ts = 1700000000000
    out = sys.stdout

    def emit(op, before, after, pos):
        row = after or before
        src = {"version": "2.1.0.Final", "connector": "postgresql", "name": "debian",
               "ts_ms": ts + pos, "snapshot": "false", "db": "debian", "schema": "debian",
               "table": "packages", "lsn": 1000 + pos}
        value = {"before": before, "after": after, "source": src, "op": op, "ts_ms": ts + pos}
        out.write(json.dumps({"id": row["id"]}) + "\t" + json.dumps(value) + "\n")

    for i, r in enumerate(rows):
        r["id"] = i + 1
        emit("c", None, r, i)
    pos = len(rows)
    for r in rng.sample(rows, int(len(rows) * args.update_share)):
        new = dict(r, description=r["description"] + "\nThis package was updated.")
        emit("u", r, new, pos)
        pos += 1
    for r in rng.sample(rows, int(len(rows) * args.delete_share)):
        emit("d", r, None, pos)
        out.write(json.dumps({"id": r["id"]}) + "\t\n")
        pos += 1


main()
