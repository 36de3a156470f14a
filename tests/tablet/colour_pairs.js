// Run in the page by test_tablet.py: every visible text's colour and the background it is
// actually drawn on, as Chromium computed them (translucent backgrounds and opacity composited;
// each keyframe background of an animated element too). The test computes the WCAG ratio.
// Disabled buttons are left out: WCAG exempts inactive controls.
return (function () {
  const probe = document.createElement("div");
  document.body.appendChild(probe);
  function rgba(text) {
    probe.style.color = "";
    probe.style.color = text;
    const m = getComputedStyle(probe).color.match(/[\d.]+/g).map(Number);
    return { r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1 };
  }
  function over(top, under) { // top composited over an opaque `under`
    const a = top.a;
    return { r: top.r * a + under.r * (1 - a), g: top.g * a + under.g * (1 - a), b: top.b * a + under.b * (1 - a), a: 1 };
  }
  function chain(el) {
    const out = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) out.push(e);
    return out;
  }
  // The opaque colour behind el's text: its and its ancestors' backgrounds from the page up;
  // `replace` swaps one element's background (a keyframe).
  function backdrop(el, replace) {
    let bg = { r: 255, g: 255, b: 255, a: 1 }; // the canvas, were nothing painted
    for (const e of chain(el).reverse()) {
      const c = replace && replace.el === e ? replace.colour : rgba(getComputedStyle(e).backgroundColor);
      const o = Number(getComputedStyle(e).opacity);
      if (c.a > 0) bg = over({ r: c.r, g: c.g, b: c.b, a: c.a * o }, bg);
    }
    return bg;
  }
  function opacity(el) {
    return chain(el).reduce((p, e) => p * Number(getComputedStyle(e).opacity), 1);
  }
  function visible(el) {
    if (!el.getClientRects().length) return false;
    const cs = getComputedStyle(el);
    return cs.visibility !== "hidden" && cs.display !== "none";
  }
  function ownText(el) {
    return Array.from(el.childNodes).filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
  }
  const pairs = [];
  function add(el, text, fg, bg, what) {
    const shown = over({ r: fg.r, g: fg.g, b: fg.b, a: fg.a * opacity(el) }, bg);
    const desc = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "");
    pairs.push({ what: what + " " + desc, text: text.slice(0, 60), fg: [shown.r, shown.g, shown.b], bg: [bg.r, bg.g, bg.b] });
  }
  for (const el of document.body.querySelectorAll("*")) {
    if (el === probe || el.closest("svg, script, style, option") || !visible(el)) continue;
    if (el.closest("button:disabled")) continue;
    const cs = getComputedStyle(el);
    const text = ownText(el);
    if (text) {
      add(el, text, rgba(cs.color), backdrop(el), "text");
      // Each keyframe background of an animation on it or an ancestor (the flashing banner).
      for (const e of chain(el)) {
        const name = getComputedStyle(e).animationName;
        if (!name || name === "none") continue;
        for (const sheet of document.styleSheets) {
          for (const rule of sheet.cssRules) {
            if (rule.type !== CSSRule.KEYFRAMES_RULE || rule.name !== name) continue;
            for (const frame of rule.cssRules) {
              if (frame.style.backgroundColor) {
                add(el, text, rgba(cs.color), backdrop(el, { el: e, colour: rgba(frame.style.backgroundColor) }), "keyframe " + frame.keyText);
              }
            }
          }
        }
      }
    }
    if ((el.tagName === "INPUT" || el.tagName === "SELECT") && !el.disabled) {
      if (el.placeholder && !el.value) add(el, el.placeholder, rgba(getComputedStyle(el, "::placeholder").color), backdrop(el), "placeholder");
      else if (el.value && el.type !== "range" && el.type !== "checkbox") add(el, String(el.value), rgba(cs.color), backdrop(el), "value");
    }
  }
  probe.remove();
  return pairs;
})();
