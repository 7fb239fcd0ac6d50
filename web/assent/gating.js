/*
  Banner script, part 3: gated scripts and iframes. The page marks them with data-assent-category (one category, or
  several separated by spaces, all of which must be granted):
    <script type="text/plain" data-assent-category="marketing" src="..."></script>
    <iframe data-assent-category="marketing" data-src="..."></iframe>
*/

/** Whether every category that an element names is granted by the choice in force. */
function isReleased(gatedElement) {
  return (
    currentChoice &&
    gatedElement.dataset.assentCategory.split(' ').every((categoryId) => currentChoice.choices[categoryId])
  );
}

/** Loads the iframes and runs the scripts that the choice in force allows; blocked iframes get a placeholder. */
function releaseGatedContent() {
  document.querySelectorAll('iframe[data-assent-category][data-src]').forEach((frame) => {
    if (isReleased(frame)) loadFrame(frame);
    else if (!frame.assentPlaceholder) addPlaceholder(frame);
  });
  runNextGatedScript();
}

function loadFrame(frame) {
  if (frame.assentPlaceholder) frame.assentPlaceholder.remove();
  frame.src = frame.dataset.src;
  delete frame.dataset.src;
  frame.style.display = '';
}

/**
 * In place of a blocked iframe, and of its size: what it would show and a button that grants its (first) category
 * and nothing else.
 */
function addPlaceholder(frame) {
  const categoryId = frame.dataset.assentCategory.split(' ')[0];
  ensureRoot().then(() => {
    // Released, or given a placeholder, while the stylesheet loaded.
    if (frame.assentPlaceholder || !frame.dataset.src) return;
    const allow = () =>
      choose((id) => id == categoryId || (currentChoice && currentChoice.choices[id]), 'custom');
    const placeholder = element('div', { class: 'assent assent-ph', lang: language, dir: textDirection }, [
      element('p', {}, [withCategory(texts.blocked, categoryId)]),
      button(withCategory(texts.allow, categoryId), allow),
    ]);
    frame.assentPlaceholder = placeholder;
    placeholder.style.width = (frame.offsetWidth || 300) + 'px';
    placeholder.style.minHeight = (frame.offsetHeight || 150) + 'px';
    frame.style.display = 'none';
    frame.before(placeholder);
  });
}

/** A gated script with src is loading: the next one waits for it. */
let gatedScriptLoading = false;

/**
 * Runs the first gated script that the choice allows, then the next: one at a time, in document order, each as a
 * new <script> with the same attributes (but type), text and nonce. A script with src loads before the next runs.
 */
function runNextGatedScript() {
  if (gatedScriptLoading) return;
  const gated = Array.from(
    document.querySelectorAll('script[type="text/plain"][data-assent-category]'),
  ).find(isReleased);
  if (!gated) return;
  const script = document.createElement('script');
  for (const attribute of gated.attributes) {
    if (attribute.name != 'type') script.setAttribute(attribute.name, attribute.value);
  }
  // Browsers hide the nonce attribute's value once the page is parsed; the property still has it.
  script.nonce = gated.nonce;
  if (gated.src) {
    gatedScriptLoading = true;
    script.onload = script.onerror = () => {
      gatedScriptLoading = false;
      runNextGatedScript();
    };
  } else {
    script.text = gated.text;
  }
  gated.replaceWith(script);
  if (!gated.src) runNextGatedScript();
}
