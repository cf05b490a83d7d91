"use strict";
// Which words of a hit's text to mark for a query: the words the keyword index matched.
//
// The index tokenises with FTS5's 'porter unicode61 remove_diacritics 2' (see
// searchkit/store/fulltext.py): runs of letters and digits, lower-cased, accents removed,
// then Porter-stemmed. Here both sides are cut the same way and reduced by step 1 of the
// Porter stemmer as SQLite writes it (plurals, -ed, -ing, y to i). Two words with the same
// step-1 stem have the same full stem, so a marked word is always one the index matched;
// a word matched only through the later steps ("generous" for "generate") goes unmarked.
//
// Chinese, Japanese and Korean are cut as searchkit/analysis.py cuts them: runs of Han,
// Hiragana, Katakana and Hangul (the code point ranges of analysis._RANGES) into characters
// and character pairs. A pair of the query is marked wherever it occurs in a run, a single
// character only where the query's run is that one character (a query of 축구 marks the
// 축구 of 축구를, not every 구), as analysis.spans does.
(() => {
  const WORD = /[\p{L}\p{N}\p{M}]+/gu;
  const CJK = new RegExp(
    "[\u1100-\u11ff\u3005\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff" +
      "\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7a3" +
      "\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f\u{20000}-\u{3134f}]+",
    "gu",
  );

  function fold(word) {
    return word.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
  }

  // SQLite's fts5PorterIsVowel: y is a vowel after a consonant.
  function isVowel(c, yIsVowel) {
    return "aeiou".includes(c) || (yIsVowel && c === "y");
  }

  // The consonant (1) / vowel (0) pattern of `s`, as SQLite reads it.
  function pattern(s) {
    const out = [];
    for (const c of s) out.push(isVowel(c, out.length > 0 && out[out.length - 1] === 1) ? 0 : 1);
    return out;
  }

  // Porter's m: the number of vowel-then-consonant runs.
  function measure(s) {
    const p = pattern(s);
    let m = 0;
    for (let i = 1; i < p.length; i++) if (p[i] === 1 && p[i - 1] === 0) m++;
    return m;
  }

  // SQLite's fts5Porter_Vowel: a, e, i, o, u anywhere, or y after the first letter.
  function hasVowel(s) {
    return [...s].some((c, i) => isVowel(c, i > 0));
  }

  // Consonant, vowel, consonant at the end, the last not w, x or y (Porter's *o).
  function endsCvc(s) {
    const p = pattern(s).slice(-3).join("");
    return p === "101" && !"wxy".includes(s[s.length - 1]);
  }

  // Step 1b: -eed, -ed, -ing, then the fix-ups of fts5PorterStep1B2 and fts5PorterCb.
  function step1b(word) {
    if (word.length > 3 && word.endsWith("eed")) {
      return measure(word.slice(0, -3)) > 0 ? word.slice(0, -1) : word;
    }
    const suffix = ["ed", "ing"].find((x) => word.length > x.length && word.endsWith(x));
    const s = suffix ? word.slice(0, -suffix.length) : "";
    if (!suffix || !hasVowel(s)) return word;
    if (s.length > 2 && ["at", "bl", "iz"].some((x) => s.endsWith(x))) return s + "e";
    const last = s[s.length - 1];
    if (!isVowel(last, false) && !"lsz".includes(last) && last === s[s.length - 2]) return s.slice(0, -1);
    return measure(s) === 1 && endsCvc(s) ? s + "e" : s;
  }

  // Step 1a: -sses, -ies, -s (not -ss).
  function step1a(word) {
    if (!word.endsWith("s")) return word;
    if (word.endsWith("es")) {
      const two = (word.length > 4 && word.endsWith("sses")) || (word.length > 3 && word.endsWith("ies"));
      return word.slice(0, two ? -2 : -1);
    }
    return word.endsWith("ss") ? word : word.slice(0, -1);
  }

  // Porter's step 1 as SQLite's fts5PorterCb runs it: 1a, 1b, and 1c (y to i).
  function stem(raw) {
    const token = fold(raw);
    const bytes = new TextEncoder().encode(token).length;
    if (bytes < 3 || bytes > 64) return token; // what SQLite stems
    const word = step1b(step1a(token));
    return word.endsWith("y") && hasVowel(word.slice(0, -1)) ? word.slice(0, -1) + "i" : word;
  }

  function words(text) {
    return text.match(WORD) || [];
  }

  // The query's CJK units worth marking: each run's pairs, or a run of one character.
  function cjkUnits(query) {
    const units = new Set();
    for (const run of query.matchAll(CJK)) {
      const chars = [...run[0]];
      if (chars.length === 1) units.add(chars[0]);
      for (let i = 0; i + 1 < chars.length; i++) units.add(chars[i] + chars[i + 1]);
    }
    return units;
  }

  // [start, end] of the words of text[from:to] whose stem the query has.
  function wordRanges(text, from, to, stems, found) {
    for (const w of text.slice(from, to).matchAll(WORD)) {
      if (stems.has(stem(w[0]))) found.push([from + w.index, from + w.index + w[0].length]);
    }
  }

  // [start, end] of the units of a CJK run (at `at` in the text) that the query has.
  function cjkRanges(run, at, units, found) {
    const chars = [...run];
    const offsets = [at];
    for (const c of chars) offsets.push(offsets[offsets.length - 1] + c.length);
    chars.forEach((c, i) => {
      if (units.has(c)) found.push([offsets[i], offsets[i + 1]]);
      if (i + 1 < chars.length && units.has(c + chars[i + 1])) found.push([offsets[i], offsets[i + 2]]);
    });
  }

  // What to mark in `text` for `query`: [start, end] ranges, in order, overlaps merged.
  function ranges(text, query) {
    const stems = new Set(words(query.replace(CJK, " ")).map(stem));
    const units = cjkUnits(query);
    const found = [];
    let last = 0;
    for (const run of text.matchAll(CJK)) {
      wordRanges(text, last, run.index, stems, found);
      cjkRanges(run[0], run.index, units, found);
      last = run.index + run[0].length;
    }
    wordRanges(text, last, text.length, stems, found);
    found.sort((a, b) => a[0] - b[0]);
    const merged = [];
    for (const [start, end] of found) {
      const top = merged[merged.length - 1];
      if (top && start <= top[1]) top[1] = Math.max(top[1], end);
      else merged.push([start, end]);
    }
    return merged;
  }

  // [[part, marked], ...] that join back into `text`; nothing is marked without a query.
  function markWords(text, query) {
    const parts = [];
    let last = 0;
    for (const [start, end] of ranges(text, query || "")) {
      if (start > last) parts.push([text.slice(last, start), false]);
      parts.push([text.slice(start, end), true]);
      last = end;
    }
    if (last < text.length || parts.length === 0) parts.push([text.slice(last), false]);
    return parts;
  }

  window.searchkitMarks = Object.freeze({ markWords, stem });
})();
