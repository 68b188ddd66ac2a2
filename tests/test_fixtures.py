"""A plain clone has what the tests need: the fixtures are in tests/fixtures/, each described in
its README, and no code reads from beside the checkout (a user's clone has no ../shared)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
# A path leading out of the checkout to the developers' reference folder.
BESIDE = re.compile(r"""\.\./shared|["']shared["']\s*/|parent\s*/\s*["']shared""")


def test_every_fixture_file_has_its_readme_line_and_every_line_its_file():
    files = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file()} - {"README.md"}
    listed = set(re.findall(r"^\| `([^`]+)` \|", (FIXTURES / "README.md").read_text(), re.M))
    assert files == listed, (sorted(files - listed), sorted(listed - files))


def test_no_code_reads_beside_the_checkout():
    sources = [ROOT / "main.py", *ROOT.glob("tools/**/*.sh")]
    sources += [p for d in ("paddlevideo", "tools", "tests") for p in (ROOT / d).rglob("*.py")]
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in sources if p != Path(__file__).resolve()
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if BESIDE.search(line.split("#")[0] if p.suffix == ".sh" else line)]  # shell comments may name it
    assert not hits, hits
