"""The documentation site builds strictly (broken links and anchors, pages missing from it fail), and the
README stays a short entry whose links reach the site's pages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from conftest import ROOT


def _build(project) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                           str(project / ".site")], cwd=project, env=env, capture_output=True, text=True)


def test_the_site_builds_strictly(tmp_path):
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    built = _build(tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / ".site" / "reference" / "params" / "index.html").is_file()
    # the same build fails on a link to an anchor that does not exist: the check is on
    with open(tmp_path / "docs" / "index.md", "a") as page:
        page.write("\nSee [nothing](guides/training.md#no-such-part).\n")
    broken = _build(tmp_path)
    assert broken.returncode != 0 and "no-such-part" in broken.stdout + broken.stderr


def test_the_readme_is_short_and_its_links_reach_the_site():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    pages = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", text)
    assert pages and all((ROOT / page).is_file() for page in pages), [p for p in pages if not (ROOT / p).is_file()]
    nav = (ROOT / "mkdocs.yml").read_text()
    assert all(page.removeprefix("docs/") in nav for page in pages)
