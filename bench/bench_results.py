"""bench_results.py - the result files of bench/run.sh and the one table printed from them.

Every section writes bench/results/<section>.json shaped
  {"<section>": {"rows": [{"metric", "value", "unit", "baseline", "baseline_value",
                           "ratio"}], "runs": N, ...}}
(bench/http.sh writes http.json in the same shape).  ratio = value / baseline_value.

usage:
  bench_results.py row FILE SECTION METRIC VALUE UNIT BASELINE BASELINE_VALUE
      appends one row (creating the file); an empty VALUE or BASELINE_VALUE leaves the
      row without numbers (a section that could not run says why in BASELINE).
  bench_results.py set FILE SECTION KEY VALUE      sets a field beside the rows
  bench_results.py table FILE...                   prints the rows of every file as one
                                                   Markdown table
"""
import json
import os
import sys


def load(path):
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return {}


def save(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def number(text):
    if text == "":
        return None
    v = float(text)
    return int(v) if v.is_integer() and abs(v) < 1e15 else v


def row(path, section, metric, value, unit, baseline, baseline_value):
    doc = load(path)
    sec = doc.setdefault(section, {})
    v, b = number(value), number(baseline_value)
    ratio = round(v / b, 3) if v is not None and b else None
    sec.setdefault("rows", []).append({"metric": metric, "value": v, "unit": unit,
                                       "baseline": baseline, "baseline_value": b,
                                       "ratio": ratio})
    save(path, doc)


def setkey(path, section, key, value):
    doc = load(path)
    try:
        value = number(value)
    except ValueError:
        pass
    doc.setdefault(section, {})[key] = value
    save(path, doc)


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, int) or (isinstance(v, float) and abs(v) >= 1000):
        return "{:,}".format(int(round(v)))
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3f" % v


def table(paths):
    lines = ["| section | metric | value | unit | baseline (same run) | baseline value | ratio |",
             "| --- | --- | ---: | --- | --- | ---: | ---: |"]
    for path in paths:
        doc = load(path)
        for section, sec in doc.items():
            runs = sec.get("runs")
            name = section + (" (%s run%s)" % (runs, "s" if runs != 1 else "") if runs else "")
            for r in sec.get("rows", []):
                ratio = r.get("ratio")
                lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    name, r.get("metric", ""), fmt(r.get("value")), r.get("unit", ""),
                    r.get("baseline", ""), fmt(r.get("baseline_value")),
                    "-" if ratio is None else "%.3g" % ratio))
    print("\n".join(lines))


def main():
    a = sys.argv[1:]
    if a[:1] == ["row"] and len(a) == 8:
        row(*a[1:])
    elif a[:1] == ["set"] and len(a) == 5:
        setkey(*a[1:])
    elif a[:1] == ["table"]:
        table(a[1:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


main()
