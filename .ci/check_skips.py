"""Fail when a test that needs a real service or ../shared was skipped (CI must run them all)."""

import sys
import xml.etree.ElementTree as ET

MARKERS = ("service:", "shared:", "../shared", "not installed")


def main(path: str) -> int:
    root = ET.parse(path).getroot()  # noqa: S314 - our own pytest junit file
    bad = []
    total = skipped = 0
    for case in root.iter("testcase"):
        total += 1
        for skip in case.findall("skipped"):
            skipped += 1
            msg = (skip.get("message") or "") + (skip.text or "")
            if any(m in msg for m in MARKERS):
                bad.append(f"{case.get('classname')}.{case.get('name')}: {msg.strip()[:200]}")
    print(f"{total} tests, {skipped} skipped, {len(bad)} service/reference skips")
    for line in bad:
        print("  SKIPPED UNDER CI:", line)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
