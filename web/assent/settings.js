/*
  Assent's banner script, part 1 of 6: the site's settings and the visitor's language.

  The Assent server serves this script at /s/{site}/assent.js. build.rs joins the files of web/assent/ (and the shared
  helpers of web/shared/elements.js) in the fixed order of its ASSENT_PARTS list, inside one function, then minifies
  the whole with a JavaScript parser (oxc). So:
  - every name declared at the top of a part is visible to the other parts and to nothing on the page: the page sees
    only window.assent and the `assent:consent` event (start.js);
  - a part may use a function of a later part (declarations are hoisted), but code that runs at load may only read
    variables of earlier parts;
  - write syntax up to ES2017, the level of the browsers that have the DOM methods the script relies on (append,
    prepend, replaceWith, closest); the minifier keeps its output at that level;
  - no eval, new Function, innerHTML or inline handler attributes: text reaches the page as text (elements.js), so a
    strict Content-Security-Policy needs nothing more than the script's own origin.
  See docs/banner.md for what a visitor gets and the script's public API.
*/

// Included twice (two tags, or a tag and a copy in a bundle): the first copy does the work, the second stays inert.
if (window.assent) return;

/**
 * The site's settings: {site, api, revision, domains, categories, texts, default_language, options, gpc}.
 * The server replaces this token with a JSON object (src/http/script.rs); build.rs checks that it survives
 * minification exactly once, in a place where an object literal is an expression.
 */
const config = __ASSENT_CONFIG__;
const siteOptions = config.options || {};
const apiBase = config.api;
const categories = config.categories;
const optionalCategories = categories.filter((category) => !category.required);
const CONSENT_COOKIE = 'assent_consent';

/** Resolves once the document can be changed (the script may run from <head> without defer). */
const documentReady = new Promise((resolve) =>
  document.readyState == 'loading' ? document.addEventListener('DOMContentLoaded', resolve) : resolve(),
);

/**
 * A POST that survives the page being left (keepalive). The body is a string, so it goes as text/plain, like
 * sendBeacon: a "simple" request, without a CORS preflight.
 */
function post(url, body) {
  return fetch(url, { method: 'POST', keepalive: true, body });
}

// The language: the page's own, else the first of the browser's preferred languages that the site has texts for;
// else the site's default language; else any language the site has.
const language =
  [document.documentElement.lang]
    .concat(navigator.languages || [])
    .map((tag) => (tag || '').toLowerCase().split('-')[0])
    .find((code) => config.texts[code]) ||
  (config.texts[config.default_language] ? config.default_language : Object.keys(config.texts)[0]);
const texts = config.texts[language] || {};
const textDirection = texts.dir || 'ltr';

function categoryTexts(categoryId) {
  return (texts.categories || {})[categoryId] || {};
}

function categoryTitle(categoryId) {
  return categoryTexts(categoryId).title || categoryId;
}

/** A text with `{category}` standing for the title of a category. */
function withCategory(text, categoryId) {
  return (text || '').split('{category}').join(categoryTitle(categoryId));
}
