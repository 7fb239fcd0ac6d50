/*
  Banner script, part 4: what the visitor sees. The first layer (banner), the preferences dialog, the floating
  button that reopens it, and elements with data-assent-open that do the same. Everything lives in one
  <div id="assent"> at the start of <body>, created with the stylesheet when something first has to be shown.
*/

/** The <div id="assent"> that holds everything shown, once ensureRoot() has resolved. */
let root = null;
/** ensureRoot()'s promise: the stylesheet loads once. */
let rootReady = null;
/** The banner (first layer) while shown. */
let bannerSection = null;
/** The preferences dialog's backdrop while the dialog is open. */
let preferencesOverlay = null;
/** The floating button, once a choice exists (site option floating_button). */
let floatingButton = null;
/** What had the focus when the dialog opened: it gets the focus back when the dialog closes. */
let dialogOpener = null;

/** Loads the stylesheet, then adds the root element, in the visitor's language and its direction. */
function ensureRoot() {
  if (!rootReady) {
    rootReady = documentReady
      .then(
        () =>
          new Promise((resolve) => {
            const link = element('link', { rel: 'stylesheet', href: apiBase + '/s/assent.css' });
            // Shown even if the stylesheet does not load: unstyled is better than missing.
            link.onload = link.onerror = resolve;
            document.head.append(link);
          }),
      )
      .then(() => {
        root = element('div', { id: 'assent', class: 'assent', lang: language, dir: textDirection });
        document.body.prepend(root);
      });
  }
  return rootReady;
}

/** "Accept all" and "Reject all", equal in size and style, then a third button. */
function choiceButtons(thirdButton) {
  return element('div', { class: 'assent-row' }, [
    button(texts.accept_all, acceptAll),
    button(texts.reject_all, rejectAll),
    thirdButton,
  ]);
}

/** The first layer, unless a choice exists or it is already shown. */
function showBanner() {
  return ensureRoot().then(() => {
    if (currentChoice || bannerSection) return;
    const privacyUrl = siteOptions.privacy_url;
    bannerSection = element('section', { class: 'assent-ban', 'aria-labelledby': 'assent-t' }, [
      element('h2', { id: 'assent-t' }, [texts.title]),
      element('p', {}, [
        texts.description,
        privacyUrl ? ' ' : null,
        privacyUrl ? element('a', { href: privacyUrl }, [texts.privacy_policy]) : null,
      ]),
      choiceButtons(button(texts.customise, (event) => openPreferences(event.currentTarget))),
    ]);
    root.append(bannerSection);
  });
}

function removeBanner() {
  if (bannerSection) {
    bannerSection.remove();
    bannerSection = null;
  }
}

function showFloatingButton() {
  if (floatingButton) return;
  ensureRoot().then(() => {
    if (!floatingButton) {
      floatingButton = button('', () => openPreferences(floatingButton), 'assent-fab');
      root.append(floatingButton);
    }
    floatingButton.title = texts.floating;
  });
}

/**
 * Opens the preferences: a modal dialog with one switch per category (the choice in force, or all optional ones
 * off), its services and their cookies. `opener` (else whatever has the focus) gets the focus back on close.
 */
function openPreferences(opener) {
  dialogOpener = opener || document.activeElement;
  return ensureRoot().then(() => {
    if (preferencesOverlay) return;
    const granted = currentChoice ? currentChoice.choices : {};
    const switches = [];
    const closeButton = button('\u00d7', closePreferences, 'assent-x');
    closeButton.setAttribute('aria-label', texts.close);
    const save = () => choose((id) => switches.find((toggle) => toggle.name == id).checked, 'custom');
    const dialog = element(
      'div',
      {
        class: 'assent-dlg',
        role: 'dialog',
        'aria-modal': 'true',
        'aria-labelledby': 'assent-pt',
        tabindex: '-1',
      },
      [
        closeButton,
        element('h2', { id: 'assent-pt' }, [texts.preferences_title]),
        element('p', {}, [texts.preferences_description]),
        ...categories.map((category) => categorySection(category, granted, switches)),
        // Last child: the "Your data" part goes before it.
        choiceButtons(button(texts.save, save)),
      ],
    );
    dialog.onkeydown = (event) => keepFocusIn(dialog, event);
    preferencesOverlay = element('div', { class: 'assent-ov' }, [dialog]);
    // A click on the backdrop neither closes the dialog nor chooses anything.
    preferencesOverlay.onclick = (event) => {
      if (event.target == preferencesOverlay) dialog.focus();
    };
    if (bannerSection) bannerSection.hidden = true;
    root.append(preferencesOverlay);
    dialog.focus();
    // "Your data" (web/rights.js) loads only now, and only for a visitor who has a consent id.
    if (currentChoice && currentChoice.id) {
      const rightsUrl = apiBase + '/s/' + config.site + '/assent.js?rights=' + language;
      document.head.append(element('script', { src: rightsUrl }));
    }
  });
}

/** One category: its title and switch (disabled and on when required), description, services and cookies. */
function categorySection(category, granted, switches) {
  const id = 'assent-c-' + category.id;
  const services = category.services || [];
  const toggle = element('input', { type: 'checkbox', role: 'switch', id, 'aria-describedby': id + '-d' });
  toggle.checked = !!(category.required || granted[category.id]);
  toggle.disabled = !!category.required;
  toggle.name = category.id;
  switches.push(toggle);
  const serviceItem = (service) =>
    element('li', {}, [
      element('b', {}, [service.name]),
      ' \u00b7 ' + texts.cookies + ': ' + ((service.cookies || []).join(', ') || texts.none),
    ]);
  return element('div', { class: 'assent-cat' }, [
    element('div', { class: 'assent-hd' }, [
      element('label', { for: id }, [categoryTitle(category.id)]),
      category.required ? element('span', {}, [texts.always_on]) : null,
      toggle,
    ]),
    element('p', { id: id + '-d' }, [categoryTexts(category.id).description]),
    services.length ? element('ul', { 'aria-label': texts.services }, services.map(serviceItem)) : null,
  ]);
}

/** Escape closes the dialog; Tab and Shift+Tab go round its controls instead of leaving it. */
function keepFocusIn(dialog, event) {
  const controls = dialog.querySelectorAll('button,input:not(:disabled),a[href]');
  const first = controls[0];
  const last = controls[controls.length - 1];
  const focused = document.activeElement;
  if (event.key == 'Escape') {
    event.preventDefault();
    closePreferences();
  } else if (event.key == 'Tab' && (event.shiftKey ? focused == first || focused == dialog : focused == last)) {
    event.preventDefault();
    (event.shiftKey ? last : first).focus();
  }
}

/** Closes the dialog (the banner shows again if no choice was made) and gives the focus back. */
function closePreferences() {
  if (!preferencesOverlay) return;
  preferencesOverlay.remove();
  preferencesOverlay = null;
  if (bannerSection) bannerSection.hidden = false;
  if (dialogOpener && dialogOpener.isConnected) dialogOpener.focus();
  dialogOpener = null;
}

// Any element with data-assent-open (a "Cookie settings" link in the footer, say) opens the preferences.
document.addEventListener(
  'click',
  (event) => {
    const opener = event.target.closest('[data-assent-open]');
    if (opener) {
      event.preventDefault();
      openPreferences(opener);
    }
  },
  true,
);
