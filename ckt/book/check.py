"""Check the built book as a reader would see it.

    python -m ckt.book.check _build/html                      # every page: figures, no errors, links
    python -m ckt.book.check _build/html --screenshots shots  # + a headless-Chromium PNG per page

Per chapter page it counts the figures (``<img>``) and looks for what a reader must never see:
an error output or traceback, a glue key that did not resolve, a ``nan`` in a table, or a figure without
alt text (docutils writes the image's own path as its ``alt`` when none was given: that counts as none). A page
made from a notebook must also carry its download button and Binder and Colab launch buttons
that open the committed student notebook (``notebooks/student/<name>.ipynb``). Every internal link and anchor of
every page is followed, offline. With ``--screenshots`` it renders each page in headless Chromium
(``apt-get install chromium``) to a PNG of the *whole* page, so the pages can be looked at: the shot is
the browser's own full-page capture (DevTools ``Page.captureScreenshot`` with ``captureBeyondViewport``,
over Chromium's ``--remote-debugging-pipe``), as tall as the page's laid-out content. Exits 1 if any page has
a problem or any internal link is broken.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROBLEMS = {
    "error output": re.compile(r'class="[^"]*\boutput[^"]*\berror\b|Traceback \(most recent call last\)'),
    "unresolved glue": re.compile(r"\{glue:(text|md|any|figure)\}|glue_not_found|Could not find key"),
    "NaN in a table": re.compile(r"<td>\s*nan\s*</td>", re.IGNORECASE),
    # e.g. a string glued as Markdown but pasted with {glue:text}: the reader sees a Python repr
    "Python object repr": re.compile(r"&lt;[\w.]+ object(?: at 0x[0-9a-f]+)?&gt;"),
    # a warning printed into an output, as warnings.formatwarning writes it: "file.py:6: FutureWarning: ..."
    "warning output": re.compile(r":\d+: [A-Z]\w*Warning: "),
}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1280,800",
                  # fail every host lookup at once: offline, a request to a CDN (MathJax) would hang the
                  # page load instead of failing; the shots then show math as its TeX source
                  "--host-resolver-rules=MAP * ~NOTFOUND"]


@dataclass
class PageReport:
    page: str
    figures: int
    problems: list[str] = field(default_factory=list)


def notebook_buttons(html: str, page: str) -> list[str]:
    """What a notebook page lacks: a download button, Binder and Colab buttons that open
    ``notebooks/student/<name>.ipynb`` (the committed student notebook, not the executed copy)."""
    name = Path(page).stem
    missing = []
    source = re.escape(Path(page).with_suffix(".ipynb").as_posix())
    if not re.search(rf'href="[^"]*_sources/{source}"[^>]*class="[^"]*btn-download', html):
        missing.append("no download button for the notebook")
    for provider, host in (("Binder", "mybinder.org"), ("Colab", "colab.research.google.com")):
        urls = re.findall(rf'href="(https://{re.escape(host)}/[^"]*)"', html)
        if not urls:
            missing.append(f"no {provider} launch button")
        elif not all(u.endswith(f"/notebooks/student/{name}.ipynb") for u in urls):
            missing.append(f"{provider} button does not open notebooks/student/{name}.ipynb")
    return missing


NO_ALT = "figure without alt text"
FIGURE_FILE = re.compile(r"\.(?:png|svg|jpe?g)\b", re.IGNORECASE)


class _Images(HTMLParser):
    """(src, alt) of every ``<img>`` of a page; alt is None when the tag has none."""

    def __init__(self):
        super().__init__()
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            a = dict(attrs)
            self.images.append((a.get("src") or "", a.get("alt")))


def figure_images(html: str) -> list[tuple[str, str | None]]:
    """(src, alt) of every figure of ``html``: an ``<img>`` of a png, svg or jpg file."""
    parser = _Images()
    parser.feed(html)
    parser.close()
    return [(src, alt) for src, alt in parser.images if FIGURE_FILE.search(src)]


def figures_without_alt(html: str, figures: list[tuple[str, str | None]] | None = None) -> list[str]:
    """The src of every figure in ``html`` (or of ``figures``, already found by :func:`figure_images`) whose alt
    text is missing, blank, or only a file name: docutils writes the image's path as ``alt`` when the source gave
    none (MyST-NB's cell option ``mystnb: {image: {alt: …}}``, which :func:`ckt.book.sources.alt_from_captions`
    fills from the caption)."""
    def meaningless(src: str, alt: str | None) -> bool:
        alt = (alt or "").strip()
        return not alt or alt == src or (FIGURE_FILE.search(alt) is not None and not any(c.isspace() for c in alt))

    return [src for src, alt in (figure_images(html) if figures is None else figures) if meaningless(src, alt)]


def check_page(path: Path, root: Path) -> PageReport:
    html = path.read_text(encoding="utf-8", errors="replace")
    main = html.split('id="main-content"', 1)[-1]  # the chapter body, not the navigation
    figures = figure_images(main)
    problems = [name for name, rx in PROBLEMS.items() if rx.search(main)]
    if figures_without_alt(main, figures):
        problems.append(NO_ALT)
    page = str(path.relative_to(root))
    if (root / "_sources" / page).with_suffix(".ipynb").is_file():
        problems += notebook_buttons(html, page)
    return PageReport(page, len(figures), problems)


class _Links(HTMLParser):
    """The link targets (href, src) and the anchor names (id, a name) of one page."""

    def __init__(self):
        super().__init__()
        self.targets: list[str] = []
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("href", "src"):
            if a.get(key):
                self.targets.append(a[key])
        if a.get("id"):
            self.anchors.add(a["id"])
        if tag == "a" and a.get("name"):
            self.anchors.add(a["name"])


def broken_links(html_root: Path) -> tuple[int, list[str]]:
    """Follow every internal link and anchor of every rendered page, offline.

    Returns (links checked, problems); a problem reads ``page -> target (missing file)`` or
    ``page -> target (no anchor #x)``. External links (any scheme, or ``//host``) are not followed.
    """
    pages = rendered_pages(html_root)
    parsed: dict[Path, _Links] = {}

    def parse(page: Path) -> _Links:
        if page not in parsed:
            parsed[page] = _Links()
            parsed[page].feed(page.read_text(encoding="utf-8", errors="replace"))
        return parsed[page]

    checked, problems = 0, []
    for page in pages:
        for target in parse(page).targets:
            url = urlsplit(target)
            if url.scheme or target.startswith("//"):
                continue
            checked += 1
            dest = (page.parent / unquote(url.path)).resolve() if url.path else page.resolve()
            if dest.is_dir():
                dest = dest / "index.html"
            where = f"{page.relative_to(html_root)} -> {target}"
            if not dest.is_file():
                problems.append(f"{where} (missing file)")
            elif url.fragment and dest.suffix == ".html" and unquote(url.fragment) not in parse(dest).anchors:
                problems.append(f"{where} (no anchor #{url.fragment})")
    return checked, problems


def rendered_pages(html_root: Path) -> list[Path]:
    """The pages Sphinx rendered (not the theme's templates under _static, nor stale dot-folders)."""
    return sorted(p for p in html_root.rglob("*.html")
                  if not any(part[0] in "_." for part in p.relative_to(html_root).parts))


def is_redirect(page: Path) -> bool:
    """Jupyter Book's root index.html only redirects to the first chapter (nothing to show)."""
    return page.read_text(encoding="utf-8", errors="replace").lstrip().lower().startswith('<meta http-equiv="refresh"')


def chapter_pages(html_root: Path) -> list[Path]:
    return [p for p in rendered_pages(html_root)
            if p.name not in {"genindex.html", "search.html"} and not is_redirect(p)]


def find_chromium() -> str | None:
    return next((c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)


WIDTH = 1280  # CSS pixels; the height is the page's


class DevTools:
    """Chromium driven over ``--remote-debugging-pipe``: DevTools protocol messages, NUL-terminated JSON,
    written to the browser's fd 3 and read from its fd 4 (the transport Puppeteer's pipe mode uses)."""

    def __init__(self, chromium: str, profile: Path, timeout: float = 120):
        to_browser, self._cmd = os.pipe()
        self._res, from_browser = os.pipe()

        def fds():  # in the child: the pipe ends where Chromium expects them
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                      "--remote-debugging-pipe", "about:blank"], pass_fds=(3, 4), preexec_fn=fds,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self.timeout, self._next, self._buffer, self.events = timeout, 0, b"", []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._res], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._res, 1 << 20) if ready else b""
            if not chunk:
                raise TimeoutError("Chromium did not answer over the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._cmd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._read(deadline))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._cmd)
        os.close(self._res)


def screenshot(page: Path, out: Path, chromium: str) -> tuple[int, int]:
    """A PNG of the whole page (width :data:`WIDTH`, the height of its laid-out content); returns (w, h)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    browser = DevTools(chromium, out.parent / ".chromium-profile")
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        browser.call("Page.enable", session)
        browser.call("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=800, deviceScaleFactor=1,
                     mobile=False)
        browser.call("Page.navigate", session, url=page.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        size = browser.call("Page.getLayoutMetrics", session)["cssContentSize"]
        height = max(1, int(size["height"] + 0.5))
        shot = browser.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1})
    finally:
        browser.close()
    out.write_bytes(base64.b64decode(shot["data"]))
    return WIDTH, height


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ckt.book.check", description=__doc__.split("\n\n")[0])
    p.add_argument("html", help="the built book (…/_build/html)")
    p.add_argument("--screenshots", default=None, help="folder for one PNG per page (needs chromium)")
    args = p.parse_args(argv)
    root = Path(args.html)
    pages = chapter_pages(root)
    if not pages:
        print(f"error: no HTML pages under {root}: build the book first (make book)", file=sys.stderr)
        return 2
    chromium = find_chromium() if args.screenshots else None
    if args.screenshots and not chromium:
        print("error: --screenshots needs Chromium: apt-get install chromium", file=sys.stderr)
        return 2
    bad = 0
    for page in pages:
        report = check_page(page, root)
        bad += bool(report.problems)
        shot = ""
        if chromium:
            png = Path(args.screenshots) / (report.page.replace("/", "__").removesuffix(".html") + ".png")
            screenshot(page, png, chromium)
            shot = f"  -> {png}"
        status = "OK " if not report.problems else "BAD"
        print(f"{status} {report.page:<45} {report.figures:>3} figure(s)  {', '.join(report.problems)}{shot}")
    checked, broken = broken_links(root)
    for problem in broken:
        print(f"BAD link {problem}")
    print(f"{'OK ' if not broken else 'BAD'} internal links: {checked} checked, {len(broken)} broken")
    return 1 if bad or broken else 0


if __name__ == "__main__":
    sys.exit(main())
