// The back office's only script: under every credits input (marked data-credits-one/-other by
// backoffice/forms.py) a live "= 500.000 créditos" in the page's language, so a zero too many is
// seen before it is granted. No inline code: the admin runs under a Content-Security-Policy.
"use strict";

(function () {
  const language = document.documentElement.lang || "pt-BR";
  const grouped = new Intl.NumberFormat(language, { maximumFractionDigits: 0 });

  function preview(input) {
    const output = document.createElement("output");
    output.className = "credits-preview";
    output.id = input.id + "-preview";
    output.setAttribute("for", input.id);
    output.setAttribute("aria-live", "polite");
    input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), output.id]
      .filter(Boolean).join(" "));
    input.insertAdjacentElement("afterend", output);

    function update() {
      const text = input.value.trim();
      if (!/^\d+$/.test(text)) {
        output.textContent = "";
        return;
      }
      const amount = Number(text);
      const words = amount === 1 ? input.dataset.creditsOne : input.dataset.creditsOther;
      output.textContent = words.replace("%(amount)s", grouped.format(amount));
    }

    input.addEventListener("input", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-credits-other]").forEach(preview);
  });
})();
