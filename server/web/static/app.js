// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // "Select all" boxes tick every send in their own mailbox's section.
  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      box.closest("section").querySelectorAll('input[name="send_id"]').forEach(function (item) {
        item.checked = box.checked;
      });
    });
  });

  // The pending list polls for changes and reloads, unless the reviewer is in the middle of something.
  var heading = document.getElementById("pending-heading");
  if (!heading) return;
  var known = heading.getAttribute("data-fingerprint");
  function busy() {
    var active = document.activeElement;
    var typing = active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA") && active.value;
    return typing || document.querySelector('input[name="send_id"]:checked');
  }
  function poll() {
    fetch(heading.getAttribute("data-poll"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        document.title = (data.count ? "(" + data.count + ") " : "") + "Pending approvals · mailgate";
        if (data.fingerprint === known) return;
        if (busy()) {
          document.getElementById("new-arrivals").hidden = false;
        } else {
          window.location.reload();
        }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  setInterval(poll, 5000);
})();
