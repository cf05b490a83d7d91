"use strict";
// Which words of a hit's text to mark for a query: the words the keyword index matched.
//
// The index tokenises with FTS5's 'porter unicode61 remove_diacritics 2' (see
// searchkit/store/fulltext.py): runs of letters and digits, lower-cased, accents removed,
// then Porter-stemmed. Here both sides are cut the same way and reduced by step 1 of the
// Porter stemmer as SQLite writes it (plurals, -ed, -ing, y to i). Two words with the same
// step-1 stem have the same full stem, so a marked word is always one the index matched;
// a word matched only through the later steps ("generous" for "generate") goes unmarked.
// A new tokeniser (CJK) changes `words` and `stem` only.
(() => {
  const WORD = /[\p{L}\p{N}\p{M}]+/gu;

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

  // [[part, marked], ...] that join back into `text`; nothing is marked without a query.
  function markWords(text, query) {
    const wanted = new Set(words(query || "").map(stem));
    const parts = [];
    let last = 0;
    for (const found of text.matchAll(WORD)) {
      if (!wanted.has(stem(found[0]))) continue;
      if (found.index > last) parts.push([text.slice(last, found.index), false]);
      parts.push([found[0], true]);
      last = found.index + found[0].length;
    }
    if (last < text.length || parts.length === 0) parts.push([text.slice(last), false]);
    return parts;
  }

  window.searchkitMarks = Object.freeze({ markWords, stem });
})();
