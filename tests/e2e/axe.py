"""axe-core (from the npm registry, pinned in package.json / package-lock.json) run inside the page by Playwright.

`npm ci` installs it into node_modules/ (git-ignored) when it is missing: `make test` does it first, and so does
the first call here when the tests run on their own. Never a CDN: the tests load the file from disk.
"""
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@cache
def axe_source() -> str:
    if not AXE.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install axe-core for the accessibility tests (apt-get install npm)"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True, timeout=300)
    return AXE.read_text(encoding="utf-8")


def axe_violations(page, *, include: str | None = None) -> list[dict]:
    """The serious and critical violations axe-core finds in the page as it is now (WCAG 2.x A and AA rules
    and axe's best practices), each with the elements it names."""
    if not page.evaluate("() => !!window.axe"):
        page.evaluate(axe_source() + "\n;undefined")  # evaluated over the DevTools protocol: the page's CSP allows it
    result = page.evaluate(
        """async (include) => {
            const r = await window.axe.run(include ? {include: [include]} : document,
                                           {resultTypes: ["violations"]});
            return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => ({target: n.target, impact: n.impact, summary: n.failureSummary}))}));
        }""", include)
    return [v for v in result if v["impact"] in BLOCKING]


def describe(violations: list[dict]) -> str:
    return json.dumps(violations, indent=1)[:6000]
