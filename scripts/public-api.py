#!/usr/bin/env python3
"""The public API of the library products, checked.

Extracts the symbol graphs of the modules behind the library products (DistillCore, Distill)
from a finished build with swift-symbolgraph-extract, lists every public declaration (one line:
kind, path, declaration), and fails when
  - there are more than LIMIT declarations,
  - any of them has no doc comment,
  - the list differs from the checked-in docs/public-api.txt (an accidental API change; an
    intended one is reviewed as a diff: rerun with --update and commit the file).

Counted: every public declaration written in the modules' sources — types, members, enum
cases, operators, free functions. Not counted: what the compiler synthesizes (a raw-value enum's
init(rawValue:), Codable's init(from:) and encode(to:), Equatable's ==, members inherited from
the standard library's protocol extensions), which has no source location.

Usage: scripts/public-api.py [--build-path .build/release] [--update]
Only the Python standard library is used.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

LIMIT = 410
MODULES = ["DistillCore", "Distill"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIST = os.path.join(ROOT, "docs", "public-api.txt")


def triple():
    out = subprocess.run(["swiftc", "-print-target-info"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["target"]["triple"]


def extract(build, outdir):
    for module in MODULES:
        cmd = ["swift-symbolgraph-extract", "-module-name", module, "-target", triple(),
               "-I", os.path.join(build, "Modules"),
               "-Xcc", "-fmodule-map-file=" + os.path.join(build, "CKernels.build", "module.modulemap"),
               "-Xcc", "-I", "-Xcc", os.path.join(ROOT, "include"),
               "-Xcc", "-I", "-Xcc", os.path.join(ROOT, "Sources", "COpenBLAS"),
               "-Xcc", "-I", "-Xcc", os.path.join(ROOT, "Sources", "CZlib"),
               "-minimum-access-level", "public", "-output-dir", outdir]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"public-api: swift-symbolgraph-extract failed for {module}:\n{r.stderr}")


def declarations(outdir):
    rows, undocumented = [], []
    for name in sorted(os.listdir(outdir)):
        if not name.endswith(".symbols.json"):
            continue
        graph = json.load(open(os.path.join(outdir, name)))
        for s in graph["symbols"]:
            if "::SYNTHESIZED::" in s["identifier"]["precise"] or "location" not in s:
                continue
            module = graph["module"]["name"]
            path = module + "." + ".".join(s["pathComponents"])
            decl = "".join(f["spelling"] for f in s.get("declarationFragments", []))
            rows.append(f'{s["kind"]["identifier"].removeprefix("swift.")} {path} :: {" ".join(decl.split())}')
            doc = s.get("docComment", {}).get("lines", [])
            if not any(line["text"].strip() for line in doc):
                loc = s.get("location", {})
                where = loc.get("uri", "").split("/Sources/")[-1]
                line = loc.get("position", {}).get("line", 0) + 1
                undocumented.append(f"{path} (Sources/{where}:{line})")
    return sorted(set(rows)), sorted(set(undocumented))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build-path", default=os.path.join(ROOT, ".build", "release"))
    p.add_argument("--update", action="store_true", help="rewrite docs/public-api.txt")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as out:
        extract(a.build_path, out)
        rows, undocumented = declarations(out)
    text = "".join(r + "\n" for r in rows)
    print(f"public-api: {len(rows)} public declarations (limit {LIMIT}), {len(undocumented)} without a doc comment")
    failed = False
    if len(rows) > LIMIT:
        print(f"public-api: more than {LIMIT} public declarations")
        failed = True
    if undocumented:
        print("public-api: undocumented public declarations:\n  " + "\n  ".join(undocumented))
        failed = True
    if a.update:
        with open(LIST, "w") as f:
            f.write(text)
        print(f"public-api: wrote {os.path.relpath(LIST, ROOT)}")
    else:
        old = open(LIST).read() if os.path.exists(LIST) else ""
        if old != text:
            before, after = set(old.splitlines()), set(text.splitlines())
            for r in sorted(before - after):
                print("  removed: " + r)
            for r in sorted(after - before):
                print("  added:   " + r)
            print("public-api: the public API differs from docs/public-api.txt; "
                  "if the change is intended, run scripts/public-api.py --update and commit the file")
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
