"""What a page shows, read from the rendered DOM: the colours actually painted (WCAG contrast)
and the words a person reads (shadow roots included, `lang="en"` parts left out)."""

import re
from gettext import GNUTranslations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Text: 4.5:1 (3:1 when large: ≥ 24 px, or ≥ 18.66 px bold). Every text node of the page and of
# the widget's shadow root, against the first opaque background behind it.
CONTRAST_JS = """
() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const blend = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const background = (node) => {
    const layers = [];
    for (let n = node; n; n = n.parentElement || (n.getRootNode() && n.getRootNode().host)) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let colour = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) colour = blend(layers[i], colour);
    return colour;
  };
  const found = [];
  const visit = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const el = t.parentElement;
      if (!t.textContent.trim() || !el || ['SCRIPT', 'STYLE', 'OPTION', 'TITLE'].includes(el.tagName)) continue;
      const r = el.getBoundingClientRect(), s = getComputedStyle(el);
      if (!r.width || !r.height || s.visibility === 'hidden' || el.closest('[hidden], .visually-hidden, .skip')) continue;
      const fg = parse(s.color), bg = background(el), size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
      const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
      const got = ratio(blend(fg, bg), bg);
      if (got < need) found.push({text: t.textContent.trim().slice(0, 40), ratio: Math.round(got * 100) / 100, need, colour: s.color});
    }
    root.querySelectorAll('*').forEach((n) => { if (n.shadowRoot) visit(n.shadowRoot); });
  };
  visit(document.body);
  return found;
}
"""

TEXT_JS = """
() => {
  const parts = [];
  const visit = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const el = t.parentElement;
      if (!el || ['SCRIPT', 'STYLE'].includes(el.tagName)) continue;
      const tagged = el.closest('[lang]');
      if (tagged && tagged.getAttribute('lang').toLowerCase().startsWith('en')) continue;
      parts.push(t.textContent);
    }
    root.querySelectorAll('*').forEach((n) => {
      for (const name of ['aria-label', 'alt', 'title', 'placeholder']) { if (n.getAttribute(name)) parts.push(n.getAttribute(name)); }
      if (n.shadowRoot) visit(n.shadowRoot);
    });
  };
  visit(document.documentElement);
  return parts.join(' ');
}
"""

# Names people see in English on purpose.
ALLOWED = {"api", "csv", "pix", "librechat", "solaris", "english", "http"}
WORD = re.compile(r"[A-Za-zÀ-ÿ]{3,}")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|<[^>]+>|\{\{[^}]*\}\}")


def _words(text: str) -> set[str]:
    return {word.lower() for word in WORD.findall(PLACEHOLDER.sub(" ", text))}


def english_words() -> set[str]:
    """Words of the English messages that no Portuguese translation uses: UI English."""
    english: set[str] = set()
    portuguese: set[str] = set()
    for mo in ROOT.glob("*/locale/pt_BR/LC_MESSAGES/django.mo"):
        with mo.open("rb") as handle:
            catalog = GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
        for key, value in catalog.items():
            msgid = key[0] if isinstance(key, tuple) else key
            if msgid:
                english |= _words(msgid.split("\x04")[-1])
                portuguese |= _words(value)
    return english - portuguese - ALLOWED


# Data, not UI: e-mail addresses and links.
DATA = re.compile(r"\S+@\S+|https?://\S+")


def english_in(text: str, *, vocabulary: set[str]) -> set[str]:
    return _words(DATA.sub(" ", text)) & vocabulary


def contrast_failures(page) -> list[dict]:
    return page.evaluate(CONTRAST_JS)


def visible_words(page) -> str:
    return page.evaluate(TEXT_JS)
