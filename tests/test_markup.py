from __future__ import annotations

import subprocess
import sys

import pytest

from searchkit.markup import html_text, is_html
from searchkit.split import split

PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Frob &amp; Co: the
     manual</title>
  <style>body { color: red; }</style>
  <script>var shown = "<p>not text</p>";</script>
</head>
<body>
  <nav><a href="/">Home</a> | <a href="/docs">Docs</a></nav>
  <!-- a comment is no text -->
  <h1>Frob   manual</h1>
  <p>Frob turns <b>widgets</b> into <a href="#g">gadgets</a>.
     It is fast&nbsp;and small.</p>
  <p>Caf&#233; first line<br>second line<br/>third</p>
  <ul>
    <li>one</li>
    <li>two <i>parts</i></li>
  </ul>
  <table>
    <tr><th>Name</th><th>Size</th></tr>
    <tr><td>frob</td><td>12&nbsp;kB</td></tr>
  </table>
  <pre>
$ frob --all
    done
</pre>
  <noscript>Enable JavaScript</noscript>
  <template><p>a template</p></template>
  <svg><title>icon</title><text>drawn text</text></svg>
  <footer>&copy; 2024 <![CDATA[hidden]]>Frob</footer>
</body>
</html>
"""

PAGE_TEXT = """\
Frob & Co: the manual

Home | Docs

Frob manual

Frob turns widgets into gadgets. It is fast and small.

Café first line
second line
third

one

two parts

Name Size

frob 12 kB

$ frob --all
    done

© 2024 Frob"""


def test_a_page_gives_its_readable_text() -> None:
    assert html_text(PAGE) == PAGE_TEXT


def test_each_block_is_one_paragraph_piece() -> None:
    assert [span.text for span in split(html_text(PAGE), "paragraphs")] == PAGE_TEXT.split("\n\n")


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        # malformed: nothing closed, a stray end tag, an unquoted attribute
        ("<div><p>Unclosed <b>bold<li>item<p>next", "Unclosed bold\n\nitem\n\nnext"),
        ("text</span> after <i class=x>it", "text after it"),
        ("<p>a<p>b</div></div>c", "a\n\nbc"),  # as a browser: stray ends are ignored
        # no <head>: the title still comes first, whatever its place
        ("<body><p>body</p><title>Late title</title></body>", "Late title\n\nbody"),
        # blank lines: never more than one in a row, in running text or in <pre>
        ("<p>x<br><br><br><br>y</p>", "x\n\ny"),
        ("<pre>a\n\n\n\nb</pre>", "a\n\nb"),
        ("<p>a<!-- x --><?php echo 1 ?>b</p>", "ab"),
        ("<span>in</span><span>line</span> <em>words</em>", "inline words"),
        ("a &amp; b &lt;c&gt; &#x263A;", "a & b <c> \u263a"),
        ("notes.txt", "notes.txt"),  # no warning that it looks like a file name
        ("", ""),
        ("<html><head><title> </title></head><body>\n</body></html>", ""),
        ("<!-- only a comment -->", ""),
    ],
)
def test_html_text(markup: str, expected: str) -> None:
    assert html_text(markup) == expected


def test_deeply_nested_tags_are_no_recursion_error() -> None:
    assert html_text("<div>" * 5000 + "deep") == "deep"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("<!DOCTYPE html>\n<html>", True),
        ("<!doctype HTML PUBLIC", True),
        ("<html lang=en>", True),
        ("<HTML>", True),
        ("<html", True),
        ("\ufeff  \n<!DOCTYPE html>", True),
        ("<!-- saved from url=(0014)about:internet -->\n<html>", True),
        ('<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN">', True),
        ("<htmlish>", False),
        ("<!doctype xml>", False),
        ("<p>a fragment</p>", False),
        ("<!-- never closed <html>", False),
        ("# Title\n<html>", False),
        ("", False),
    ],
)
def test_is_html(head: str, expected: bool) -> None:
    assert is_html(head) is expected


def test_importing_the_module_does_not_load_bs4() -> None:
    check = "import searchkit.markup, sys; assert 'bs4' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True)
