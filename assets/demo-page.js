// Shows the visitor's current choice on the demo page.
document.addEventListener('assent:consent', function (e) {
  document.getElementById('state').textContent = JSON.stringify(e.detail);
});
