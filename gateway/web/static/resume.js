// /login after a page needed a signed-in person: the short-lived access cookie may only have expired while
// the session lives on. One POST to /api/v1/auth/refresh (the refresh cookie is sent only there) renews it;
// on success the browser goes back to the page it came from, otherwise the sign-in form stays.
(function () {
  var form = document.querySelector("form[data-resume]");
  if (!form || !window.fetch) return;
  var next = form.getAttribute("data-resume");
  if (!next || next.charAt(0) !== "/" || next.charAt(1) === "/") return;
  fetch("/api/v1/auth/refresh", { method: "POST", credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then(function (response) { if (response.ok) window.location.replace(next); })
    .catch(function () {});
})();
