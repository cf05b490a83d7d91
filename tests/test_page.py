"""The search page of `searchkit serve`, in a real headless Chromium (Debian's) against a real
server on 127.0.0.1: what a person sees is what the API answers.

Every request the browser makes to anywhere but 127.0.0.1 is refused and recorded, and each
test ends by checking that there was none, and no dialog, page error or CSP violation.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from .test_server import TOKEN, Server, build

CHROMIUM = os.environ.get("SEARCHKIT_CHROMIUM", "/usr/bin/chromium")
INSTALL = "apt-get install -y chromium chromium-driver"
WAIT_MS = 20_000  # every wait of the browser, in ms
XSS = "<img src=x onerror=alert(1)>"
MARKUP = {"id": "markup", "text": XSS, "metadata": {"topic": "<b>bold</b>", "note": XSS}}


def _missing() -> str | None:
    """What the page tests lack to drive a browser, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the page tests need Playwright's Python package: pip install playwright"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM}: install it with `{INSTALL}` (or set SEARCHKIT_CHROMIUM)"
    return None


def test_a_browser_is_installed() -> None:
    """CI installs Chromium; without it the page tests fail (never skip) and say how to get it."""
    if problem := _missing():
        pytest.fail(problem)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright (whose own browser download is never used)."""
    if problem := _missing():
        pytest.fail(problem)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], timeout=60_000)
        yield launched
        launched.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="module")
def folders(
    tmp_path_factory: pytest.TempPathFactory, corpus: list[dict[str, Any]], model: Any
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("page")
    return {"corpus": build(root / "corpus", [*corpus, MARKUP]), "small": build(root / "small", corpus[:30])}


@pytest.fixture(scope="module")
def server(folders: dict[str, Path]) -> Iterator[Server]:
    running = Server(*folders.values(), token=None)
    yield running
    assert running.stop() in (0, -signal.SIGTERM), "".join(running.log)


@pytest.fixture(scope="module")
def token_server(folders: dict[str, Path]) -> Iterator[Server]:
    running = Server(folders["small"], token=TOKEN)
    yield running
    assert running.stop() in (0, -signal.SIGTERM), "".join(running.log)


@dataclass
class Tab:
    """A page in a fresh browser context, and what it did that it should not have."""

    page: Any
    offsite: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, server: Server, path: str = "/", **params: Any) -> None:
        self.page.goto(server.url + path + (f"?{urlencode(params)}" if params else ""))

    def see(self, selector: str) -> Any:
        """Playwright's `expect` of what `selector` finds (it waits, up to WAIT_MS)."""
        from playwright.sync_api import expect

        return expect(self.page.locator(selector))

    def ids(self) -> Any:
        return self.see("#results > li .id")

    def error(self) -> Any:
        return self.see("#search-error")


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = Tab(context.new_page())

    def guard(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            tab.offsite.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    tab.page.set_default_timeout(WAIT_MS)
    tab.page.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
    # Chromium logs each 4xx answer as "Failed to load resource"; the tests cause those on purpose.
    tab.page.on(
        "console",
        lambda m: m.type == "error" and not m.text.startswith("Failed to load") and tab.errors.append(m.text),
    )
    yield tab
    context.close()
    assert (tab.offsite, tab.dialogs, tab.errors) == ([], [], [])


def api_search(server: Server, index: str, **body: Any) -> tuple[int, Any]:
    return server.call("POST", f"/indexes/{index}/search", body)


SHOWN = """items => items.map(li => ({
  rank: Number(li.querySelector('.rank').textContent.slice(1)),
  id: li.querySelector('.id').textContent,
  score: Number(li.querySelector('.score').title.replace('score ', '')),
  text: li.querySelector('.text').textContent,
  metadata: Object.fromEntries([...li.querySelectorAll('.meta tr')].map(
    tr => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])),
  marked: [...li.querySelectorAll('.text mark')].map(m => m.textContent),
}))"""


def shown(tab: Tab) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = tab.page.eval_on_selector_all("#results > li", SHOWN)
    return hits


def as_shown(hit: dict[str, Any]) -> dict[str, Any]:
    """An API hit as the page shows it: metadata values as text (JSON unless a string)."""
    metadata = {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        for k, v in hit["metadata"].items()
    }
    return {**{k: hit[k] for k in ("rank", "id", "score", "text")}, "metadata": metadata}


def fts_stems(words: list[str]) -> list[str]:
    """Each word as the keyword index stores it (searchkit/migrations.py's tokenizer)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        db.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", enumerate(words))
        stems = dict(db.execute("SELECT doc, term FROM v"))
    return [stems.get(i, "") for i in range(len(words))]


# --- searching ----------------------------------------------------------------------------


def test_a_typed_query_shows_the_api_hits(server: Server, tab: Tab) -> None:
    tab.open(server)
    tab.see("#index option").to_have_text(["corpus", "small"])
    tab.page.select_option("#index", "corpus")
    tab.page.fill("#q", "Will it rain tomorrow?")
    tab.page.press("#q", "Enter")
    status, answer = api_search(server, "corpus", query="Will it rain tomorrow?", k=10)
    assert status == 200 and len(answer["hits"]) == 10
    tab.ids().to_have_text([h["id"] for h in answer["hits"]])
    assert [{k: v for k, v in h.items() if k != "marked"} for h in shown(tab)] == [
        as_shown(h) for h in answer["hits"]
    ]
    assert all(h["marked"] == [] for h in shown(tab))  # dense: nothing marked
    tab.see("#summary").to_have_text(re.compile(r"^10 hits · dense · exact · \d+ ms$"))
    widths = tab.page.eval_on_selector_all(".fill", "fills => fills.map(f => parseFloat(f.style.width))")
    assert widths[0] == 100 and widths == sorted(widths, reverse=True)
    assert parse_qs(urlsplit(tab.page.url).query) == {
        "index": ["corpus"], "q": ["Will it rain tomorrow?"], "k": ["10"], "mode": ["dense"]
    }  # fmt: skip


def test_the_address_opens_a_search_and_back_works(server: Server, tab: Tab) -> None:
    first = {"index": "corpus", "q": "a recipe for pasta", "k": 3, "mode": "dense"}
    tab.open(server, **first)
    first_ids = [h["id"] for h in api_search(server, "corpus", query=first["q"], k=3)[1]["hits"]]
    tab.ids().to_have_text(first_ids)
    assert tab.page.input_value("#q") == first["q"] and tab.page.input_value("#k") == "3"
    tab.page.fill("#q", "the match ended in a draw")
    tab.page.press("#q", "Enter")
    second_ids = [
        h["id"] for h in api_search(server, "corpus", query="the match ended in a draw", k=3)[1]["hits"]
    ]
    assert second_ids != first_ids
    tab.ids().to_have_text(second_ids)
    assert parse_qs(urlsplit(tab.page.url).query)["q"] == ["the match ended in a draw"]
    tab.page.go_back()
    tab.ids().to_have_text(first_ids)
    assert parse_qs(urlsplit(tab.page.url).query)["q"] == [first["q"]]
    assert tab.page.input_value("#q") == first["q"]
    tab.page.go_forward()
    tab.ids().to_have_text(second_ids)


@pytest.mark.parametrize(
    ("mode", "group"), [("dense", False), ("keyword", False), ("hybrid", False), ("hybrid", True)]
)
def test_each_mode_shows_the_api_hits_and_marks_the_matched_words(
    server: Server, tab: Tab, mode: str, group: bool
) -> None:
    query = "Heavy RAINS expected tomorrow"
    tab.open(server, index="corpus", q=query, k=5, mode=mode, **({"group": 1} if group else {}))
    body: dict[str, Any] = {
        "query": query,
        "k": 5,
        "mode": mode,
        **({"group_by_parent": True} if group else {}),
    }
    status, answer = api_search(server, "corpus", **body)
    assert status == 200 and answer["hits"]
    tab.ids().to_have_text([h["id"] for h in answer["hits"]])
    assert tab.page.is_checked("#group") == group
    hits = shown(tab)
    assert [{k: v for k, v in h.items() if k != "marked"} for h in hits] == [
        as_shown(h) for h in answer["hits"]
    ]
    wanted = set(fts_stems(re.findall(r"\w+", query)))
    for hit in hits:
        words = re.findall(r"[^\W_]+", hit["text"])
        matched = [w for w, s in zip(words, fts_stems(words), strict=True) if s in wanted]
        assert hit["marked"] == ([] if mode == "dense" else matched), hit
    assert any(hit["marked"] for hit in hits) == (mode != "dense")


def test_the_marks_never_mark_a_word_the_keyword_index_did_not_match(
    server: Server, tab: Tab, corpus: list[dict[str, Any]]
) -> None:
    tricky = "caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled"
    tricky += (
        " sized hopping tanned falling hissing fizzed failing filing happy sky eed ies ing yyy Café CAFES"
    )
    words = sorted({w for item in corpus for w in re.findall(r"[^\W_]+", item["text"])} | set(tricky.split()))
    tab.open(server)
    stems = tab.page.evaluate("words => words.map(window.searchkitMarks.stem)", words)
    by_page: dict[str, set[str]] = {}
    for stem, fts in zip(stems, fts_stems(words), strict=True):
        by_page.setdefault(stem, set()).add(fts)
    assert [group for group in by_page.values() if len(group) > 1] == []
    text = "It was raining; the rains hit the pony's ponies."
    parts = tab.page.evaluate("text => window.searchkitMarks.markWords(text, 'RAIN pony')", text)
    assert "".join(p for p, _ in parts) == text
    assert [p for p, marked in parts if marked] == ["raining", "rains", "pony", "ponies"]


CJK_MARKS = [
    ("我喜欢踢足球和打篮球。", "足球"),
    ("今天天气很好，阳光明媚。", "天气"),  # noqa: RUF001 (the issue's own text, with its full-width comma)
    ("私はサッカーが好きです。", "サッカー"),
    ("나는 축구를 좋아한다.", "축구"),
    ("나는 축구를 좋아한다.", "축구를"),
    ("나는 야구를 좋아한다. 축구도", "축구"),
    ("soccer를 좋아 球", "soccer 球"),
    ("I like 足球 and footballs", "football 足球 like"),
    ("𠀀𠀁𠀂 test", "𠀁𠀂"),
]


def test_the_page_marks_cjk_text_as_keyword_search_analyses_it(server: Server, tab: Tab) -> None:
    from searchkit.analysis import spans

    tab.open(server)
    marked = tab.page.evaluate(
        "cases => cases.map(([t, q]) => "
        "window.searchkitMarks.markWords(t, q).filter(p => p[1]).map(p => p[0]))",
        CJK_MARKS,
    )
    assert marked == [[text[a:b] for a, b in spans(text, query)] for text, query in CJK_MARKS]
    assert marked[3] == ["축구"] and marked[5] == ["축구"]  # not 야구's 구


def test_a_filter_and_a_bad_filter(server: Server, tab: Tab) -> None:
    tab.open(server, index="corpus", q="something to eat", k=5)
    tab.ids().to_have_count(5)
    tab.page.click("#filter summary")
    first_topic = api_search(server, "corpus", query="something to eat", k=5)[1]["hits"][0]["metadata"][
        "topic"
    ]
    tab.see("#where-example").to_have_text(json.dumps({"topic": first_topic}, separators=(",", ":")))
    tab.page.fill("#where", '{"topic": "sports"}')
    tab.page.press("#q", "Enter")
    answer = api_search(server, "corpus", query="something to eat", k=5, where={"topic": "sports"})[1]
    tab.ids().to_have_text([h["id"] for h in answer["hits"]])
    assert {h["metadata"]["topic"] for h in shown(tab)} == {"sports"}
    assert json.loads(parse_qs(urlsplit(tab.page.url).query)["where"][0]) == {"topic": "sports"}
    bad = {"topic": {"$regex": "s.*"}}
    status, error = api_search(server, "corpus", query="something to eat", k=5, where=bad)
    assert status == 400
    for where, message in [
        (json.dumps(bad), error["error"]),
        (
            '{"topic": ',
            re.compile(r"^the filter is not valid JSON \(.+\); for example \{\"topic\":\"\w+\"\}$"),
        ),
        ("[1, 2]", 'the filter must be a JSON object, for example {"topic":"sports"}'),
    ]:
        tab.page.fill("#where", where)
        tab.page.press("#q", "Enter")
        tab.error().to_have_text(message)
        tab.ids().to_have_count(0)
        assert "\n" not in tab.page.text_content("#search-error")  # type: ignore[operator]


def test_an_unknown_index_is_the_api_message_in_place(server: Server, tab: Tab) -> None:
    tab.open(server, index="nope", q="rain")
    status, error = api_search(server, "nope", query="rain")
    assert status == 404
    tab.error().to_have_text(error["error"])
    tab.ids().to_have_count(0)


@pytest.mark.parametrize("mode", ["dense", "keyword"])
def test_markup_in_a_text_is_shown_as_its_characters(server: Server, tab: Tab, mode: str) -> None:
    tab.open(server, index="corpus", q="img src onerror alert", k=3, mode=mode)
    status, answer = api_search(server, "corpus", query="img src onerror alert", k=3, mode=mode)
    assert status == 200 and answer["hits"][0]["id"] == "markup"
    tab.ids().to_have_text([h["id"] for h in answer["hits"]])
    hit = shown(tab)[0]
    assert (hit["text"], hit["metadata"]) == (XSS, {"topic": "<b>bold</b>", "note": XSS})
    assert tab.page.evaluate(
        "() => [document.images.length, document.querySelectorAll('#results b').length]"
    ) == [0, 0]
    # The CSP holds too: a script put into the page by a bug would not run.
    with tab.page.expect_console_message(lambda m: "Content Security Policy" in m.text) as refused:
        ran = tab.page.evaluate(
            """() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';
                       document.body.append(s); return window.ran === 1; }"""
        )
    assert ran is False and "inline script" in refused.value.text
    tab.errors.remove(refused.value.text)


# --- the token ----------------------------------------------------------------------------


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_page_and_its_files_load_without_the_token_and_the_api_does_not(token_server: Server) -> None:
    for path in ["/", "/page/page.js", "/page/page.css", "/page/marks.js", "/docs", "/redoc"]:
        assert get(token_server.url + path)[0] == 200, path
    assert get(token_server.url + "/docs-files/swagger-ui-bundle.js")[0] == 200
    for path in ["/indexes", "/openapi.json", "/page/../indexes", "/page/%2e%2e/indexes", "/pages"]:
        status, _, body = get(token_server.url + path)
        assert status in (401, 404) and "error" in json.loads(body), path


def test_the_token_is_asked_once_kept_in_the_tab_and_never_in_the_address(
    token_server: Server, tab: Tab
) -> None:
    tab.open(token_server, index="small", q="rain", k=3)
    tab.see("#token-form").to_be_visible()
    tab.see("#token").to_be_focused()
    tab.see("#token-error").to_be_hidden()
    tab.page.fill("#token", "wrong")
    tab.page.press("#token", "Enter")
    wrong = token_server.call("GET", "/indexes", token="wrong")
    assert wrong[0] == 401
    tab.see("#token-error").to_have_text(wrong[1]["error"])
    assert tab.page.evaluate("() => sessionStorage.getItem('searchkit.token')") is None
    tab.page.fill("#token", TOKEN)
    tab.page.press("#token", "Enter")
    expected = [
        h["id"]
        for h in token_server.call("POST", "/indexes/small/search", {"query": "rain", "k": 3})[1]["hits"]
    ]
    tab.ids().to_have_text(expected)
    tab.see("#token-form").to_be_hidden()
    assert tab.page.evaluate("() => sessionStorage.getItem('searchkit.token')") == TOKEN
    assert tab.page.evaluate("() => localStorage.length") == 0 and tab.page.context.cookies() == []
    tab.page.reload()  # asked once: the tab keeps it
    tab.ids().to_have_text(expected)
    tab.see("#token-form").to_be_hidden()
    tab.page.fill("#q", "sunny weather")
    tab.page.press("#q", "Enter")
    tab.page.wait_for_url(re.compile(r"q=sunny"))
    assert TOKEN not in tab.page.url
    tab.page.goto(token_server.url + "/docs")  # the docs use the tab's token too
    tab.see(".swagger-ui .info .title").to_contain_text("searchkit")
    tab.page.goto(token_server.url + "/?index=small&q=rain")
    tab.page.evaluate("() => sessionStorage.setItem('searchkit.token', 'stale')")
    tab.page.reload()
    tab.error().to_have_text(wrong[1]["error"])  # a 401, in place
    tab.see("#token-form").to_be_visible()


# --- the docs, the headers ----------------------------------------------------------------


def test_docs_and_redoc_render_offline(server: Server, tab: Tab) -> None:
    failed: list[tuple[str, str]] = []
    tab.page.on("requestfailed", lambda r: failed.append((r.url, r.failure or "")))
    tab.open(server, "/docs")
    tab.see(".swagger-ui .info .title").to_contain_text("searchkit")
    tab.see('.opblock-summary-path:has-text("/indexes/{name}/search")').to_be_visible()
    assert failed == []
    tab.open(server, "/redoc")
    tab.see("h1").to_contain_text("searchkit")
    tab.see('h2:has-text("Similarity Matrix")').to_be_visible()
    # ReDoc's footer logo points at its CDN: the CSP stops it before it is asked for.
    assert {(urlsplit(url).hostname, why) for url, why in failed} <= {("cdn.redoc.ly", "csp")}
    tab.errors[:] = [e for e in tab.errors if "cdn.redoc.ly" not in e]
    assert tab.offsite == []


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style" or (tag == "script" and "src" not in names) or "style" in names:
            self.inline.append(tag)
        self.inline.extend(f"{tag} {name}" for name in names if name.startswith("on"))


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc"])
def test_the_html_allows_only_the_servers_own_scripts(server: Server, path: str) -> None:
    status, headers, body = get(server.url + path)
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    assert (policy["default-src"], policy["script-src"], policy["connect-src"]) == (
        "'none'",
        "'self'",
        "'self'",
    )
    assert policy["style-src"] == ("'self'" if path == "/" else "'self' 'unsafe-inline'")
    assert headers["x-content-type-options"] == "nosniff"
    markup = _Markup()
    markup.feed(body.decode())
    assert markup.inline == []
    assert "http" not in re.sub(r'content="[^"]*"', "", body.decode())  # nothing from elsewhere


# --- the panels, the keyboard, the sizes --------------------------------------------------


def test_the_index_panel_shows_the_api_info(server: Server, tab: Tab) -> None:
    tab.open(server)
    tab.page.select_option("#index", "small")
    info = server.call("GET", "/indexes/small")[1]
    tab.see("#info").to_contain_text(f"Items{info['counts']['items']}")
    rows = tab.page.eval_on_selector_all(
        "#info dt",
        "dts => Object.fromEntries(dts.map(dt => [dt.textContent, dt.nextElementSibling.textContent]))",
    )
    assert rows["Model"].startswith(info["model"]["name"]) and rows["Metric"] == info["metric"]
    assert info["index"]["faiss"] in rows["Index type"] and rows["Vectors"] == str(info["counts"]["vectors"])
    assert set(info["sizes"]) <= set(rows) and rows["Segments"] == str(len(info["segments"]))


def test_the_similarity_panel_shows_the_api_matrix_for_each_metric(server: Server, tab: Tab) -> None:
    texts = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    tab.open(server)
    tab.page.fill("#sim-texts", "\n".join(texts))
    for metric in ["cosine", "dot", "euclidean", "manhattan"]:
        if metric == "cosine":
            tab.page.click("#sim-form button")
        else:
            tab.page.select_option("#metric", metric)  # the switch recomputes
        table = server.call("POST", "/similarity", {"texts": texts, "metric": metric})[1]
        tab.see("#matrix caption").to_have_text(f"{metric}, 3 \u00d7 3")
        cells = tab.page.eval_on_selector_all("#matrix td.cell", "cells => cells.map(c => c.textContent)")
        assert [float(c) for c in cells] == pytest.approx(
            [v for row in table["scores"] for v in row], abs=5e-4
        )
        assert all(re.fullmatch(r"-?\d+\.\d{3}", c) for c in cells)
        headers = tab.page.eval_on_selector_all("#matrix th", "ths => ths.map(th => th.textContent)")
        assert headers == texts + texts


def test_every_control_has_a_label_and_the_keyboard_alone_works(server: Server, tab: Tab) -> None:
    tab.open(server)
    tab.see("#index option").to_have_count(2)
    unlabelled = tab.page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
                 .filter(c => c.tagName === 'BUTTON' ? !c.textContent.trim() : c.labels.length === 0)
                 .map(c => c.id)"""
    )
    assert unlabelled == []
    tab.page.keyboard.press("/")
    tab.see("#q").to_be_focused()
    tab.page.keyboard.type("rain tomorrow")
    tab.page.keyboard.press("Enter")
    tab.ids().to_have_count(10)
    tab.page.keyboard.press("Tab")  # to the Search button, on to k, then to the mode
    tab.page.keyboard.press("Tab")
    tab.page.keyboard.type("3")
    tab.page.keyboard.press("Enter")
    tab.ids().to_have_count(3)
    for _ in range(3):  # the mode, the checkbox, the filter's summary
        tab.page.keyboard.press("Tab")
    tab.see("#filter summary").to_be_focused()
    tab.page.keyboard.press("Enter")
    tab.page.keyboard.press("Tab")
    tab.see("#where").to_be_focused()
    tab.page.keyboard.type('{"topic": "weather"}/')  # "/" in a text box is typed, not a jump
    assert tab.page.input_value("#where") == '{"topic": "weather"}/'


def _png_width(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")


def test_the_page_fits_a_phone_and_a_desktop(server: Server, tab: Tab, tmp_path: Path) -> None:
    """Screenshots at 375 and 1,280 px; SEARCHKIT_PAGE_PNG=data/page.png also keeps the wide one."""
    for width in (375, 1280):
        tab.page.set_viewport_size({"width": width, "height": 900})
        tab.open(server, index="corpus", q="Will it rain tomorrow?", k=5, mode="hybrid")
        tab.ids().to_have_count(5)
        tab.page.click("#sim-form button")
        tab.see("#matrix td.cell").to_have_count(9)
        assert tab.page.evaluate("() => document.scrollingElement.scrollWidth") <= width
        right = tab.page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('input, select, button, textarea')]"
            ".map(c => c.getBoundingClientRect().right))"
        )
        assert right <= width
        side = tab.page.locator(".side").bounding_box()
        results = tab.page.locator("#results").bounding_box()
        assert (side["x"] > results["x"]) == (width == 1280)  # beside the results, or under them
        shot = tmp_path / f"page-{width}.png"
        tab.page.screenshot(path=str(shot), full_page=True)
        assert _png_width(shot) == width
    if os.environ.get("SEARCHKIT_PAGE_PNG"):
        shutil.copyfile(tmp_path / "page-1280.png", os.environ["SEARCHKIT_PAGE_PNG"])
