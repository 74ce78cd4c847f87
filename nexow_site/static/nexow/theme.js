/* Nexow theme: applies the stored choice ("light" / "dark") before the page paints; without a
   stored choice the page follows the system (prefers-color-scheme) through CSS alone. */
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");
  try {
    var stored = window.localStorage.getItem("nexow.theme");
    if (stored === "light" || stored === "dark") {
      root.setAttribute("data-theme", stored);
    }
  } catch (e) {
    /* storage disabled: follow the system theme */
  }
})();
