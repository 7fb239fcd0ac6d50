/*
  Building elements, shared by the banner script (web/assent/) and the dialog's "Your data" part (web/rights.js):
  build.rs puts this file into both.

  Every text (the site's texts, service names, consent ids) reaches the page through append() as a text node, or as
  an attribute value: never parsed as markup, and no handler is ever written as an attribute.
*/

/** A new element with the given attributes and children (elements or strings; null and undefined are left out). */
function element(tagName, attributes, children) {
  const node = document.createElement(tagName);
  for (const name in attributes) node.setAttribute(name, attributes[name]);
  if (children) node.append(...children.filter((child) => child != null));
  return node;
}

/** A button (not a submit button, whatever form the banner ends up in) that calls onClick with the click event. */
function button(label, onClick, className) {
  const node = element('button', { type: 'button', class: className || 'assent-btn' }, [label]);
  node.onclick = onClick;
  return node;
}
