"use strict";
// The theme is a cookie so that server-built charts can match it; no cookie follows the OS.
document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
  var root = document.documentElement;
  var dark = root.dataset.theme ? root.dataset.theme === "dark"
    : window.matchMedia("(prefers-color-scheme: dark)").matches;
  button.textContent = dark ? "Light theme" : "Dark theme";
  button.addEventListener("click", function () {
    document.cookie = "theme=" + (dark ? "light" : "dark") + "; path=/; max-age=31536000; samesite=lax";
    window.location.reload();
  });
});
