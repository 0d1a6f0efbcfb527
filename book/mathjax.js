// Renders the book's equations (\( ... \) inline, \[ ... \] displayed) with MathJax 3, from the
// copy that scripts/fetch-mathjax.sh puts in book/src/mathjax/ (so the book works offline), or,
// when that copy is missing, from the jsDelivr CDN (the same version). mdBook's own
// `mathjax-support` would load MathJax 2.7.1 from cdnjs, which needs network access; see
// book.toml.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: false,
  },
  svg: { fontCache: "global" },
};
(function () {
  const local = (typeof path_to_root === "string" ? path_to_root : "") + "mathjax/tex-svg.js";
  const script = document.createElement("script");
  script.src = local;
  script.async = true;
  script.onerror = function () {
    const cdn = document.createElement("script");
    cdn.src = "https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-svg.js";
    cdn.async = true;
    document.head.appendChild(cdn);
  };
  document.head.appendChild(script);
})();
