/* The intentions step and the plan builder on the page (the card #intentions-card): the room's
 * library, a playlist built and reordered with its running total, music and guidance, then
 * `choose` (check_in … pre_infusion) or a session plan published retained on `plan` (idle,
 * ended). The logic is intentions.js's; this file is the DOM. app.js calls
 * `IntentionsView.draw(room)` on each redraw of the room view, and lends `request`,
 * `render` and `esc` on `window.tablet`. */
(function () {
  "use strict";
  const I = window.Intentions;
  const L = window.RoomLogic;
  const $ = (id) => document.getElementById(id);
  const PAGE = 200; // tracks asked for per `library` page (the room may send fewer)
  const RESCAN_READS_MS = [3000, 10000]; // the room rescans in the background: read again then
  const RETRY_MS = 15000; // a library query that failed is tried again after this
  const PLAN_ANSWER_MS = 10000;
  const PLAN_INPUTS = ["i-session-id", "i-patient-ref", "i-session-number"].concat(I.PROTOCOL_FIELDS.map((f) => "i-" + f.key));
  const views = new Map(); // room id -> what this tablet holds for the room's intentions step
  const drawn = new Map(); // element id -> the HTML last written into it

  const tablet = () => window.tablet;

  function view(id) {
    let v = views.get(id);
    if (!v) {
      v = {
        lib: null, libState: "none", libNote: "", libAt: 0, previewNote: "",
        builder: { tracks: [], from: null, fromTracks: null }, music: "music", guidance: "none",
        seeded: null, sending: false, result: null, problems: null, plan: null, form: {},
      };
      views.set(id, v);
    }
    return v;
  }

  const esc = (s) => tablet().esc(s);

  /** Redraw a list only when its content changes, so a button stays under the finger (the
   * HTML written is kept: the browser's serialisation of it differs, `disabled=""`). */
  function setHtml(id, html) {
    const el = $(id);
    if (drawn.get(id) !== html) { drawn.set(id, html); el.innerHTML = html; }
  }

  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  // --- the library ----------------------------------------------------------------------

  /** Read the whole library, page by page until `next_offset` is null. */
  async function readLibrary(roomId) {
    const v = view(roomId);
    if (v.libState === "loading") return;
    v.libState = "loading";
    v.libNote = "Reading the room's library…";
    let lib = null;
    let offset = 0;
    try {
      for (let page = 0; page < 100 && offset !== null && offset !== undefined; page++) {
        const reply = await tablet().request(roomId, "library", { offset, limit: PAGE }, true);
        if (!reply || !reply.ok) {
          v.libState = "failed";
          v.libAt = Date.now();
          v.libNote = reply ? "The room refused the library query: " + L.errorText(reply.error) : "The room did not answer the library query; asking again shortly.";
          return;
        }
        lib = I.addPage(lib, reply.result);
        offset = reply.result.next_offset;
      }
      v.lib = lib;
      v.libState = "done";
      v.libAt = Date.now();
      v.libNote = lib.tracks.length + " tracks · " + lib.playlists.length + " playlists · read " + new Date().toLocaleTimeString([], { hour12: false });
    } finally {
      tablet().render();
    }
  }

  /** Ask the room to read its music folder again, then read the library once it has. */
  async function rescan(roomId) {
    const v = view(roomId);
    v.libNote = "Asking the room to read its music folder again…";
    tablet().render();
    const reply = await tablet().request(roomId, "library", { rescan: true, limit: 1 }, true);
    if (!reply || !reply.ok) {
      v.libNote = reply ? "Rescan refused: " + L.errorText(reply.error) : "The room did not answer the rescan.";
      tablet().render();
      return;
    }
    v.libNote = "The room is reading its music folder again; the list follows in a few seconds…";
    tablet().render();
    for (const ms of RESCAN_READS_MS) setTimeout(() => readLibrary(roomId), ms); // a slow scan too
  }

  async function preview(roomId, path, title) {
    const v = view(roomId);
    v.previewNote = "Preview of “" + title + "” sent…";
    tablet().render();
    const reply = await tablet().request(roomId, "music", { action: "preview", track: path });
    v.previewNote = reply && reply.ok ? "Playing an excerpt of “" + title + "” on the speakers." : "Preview of “" + title + "”: " + (reply ? L.errorText(reply.error) : "no reply within 5 s.");
    tablet().render();
  }

  // --- the playlist being built -----------------------------------------------------------

  function setTracks(v, tracks) {
    v.builder = Object.assign({}, v.builder, { tracks });
    v.result = null;
  }

  /** What each button of the card does: (room id, its view, the button). */
  const ACTIONS = {
    rescan: (id) => rescan(id),
    preview: (id, v, b) => preview(id, b.dataset.path, I.titleOf(b.dataset.path, v.lib && v.lib.tracks)),
    add: (id, v, b) => setTracks(v, v.builder.tracks.concat([b.dataset.path])),
    use: (id, v, b) => {
      const named = (v.lib ? v.lib.playlists : []).find((p) => p.name === b.dataset.name);
      if (named) { v.builder = { tracks: named.tracks.slice(), from: named.name, fromTracks: named.tracks.slice() }; v.music = "music"; v.result = null; }
    },
    up: (id, v, b) => setTracks(v, I.move(v.builder.tracks, Number(b.dataset.index), -1)),
    down: (id, v, b) => setTracks(v, I.move(v.builder.tracks, Number(b.dataset.index), +1)),
    remove: (id, v, b) => setTracks(v, I.remove(v.builder.tracks, Number(b.dataset.index))),
    clear: (id, v) => { v.builder = { tracks: [], from: null, fromTracks: null }; v.result = null; },
    send: (id) => sendChoice(id),
    check: (id, v) => { v.problems = checkPlan(v); v.plan = null; }, // a new draft: the last answer is old
  };

  /** Start from the session's current choice once per session (a named list needs the library). */
  function seed(v, choice, sessionId) {
    if (!choice || v.seeded === sessionId) return;
    let tracks = choice.playlist;
    let from = null;
    if (typeof tracks === "string") {
      const named = v.lib && v.lib.playlists.find((p) => p.name === choice.playlist);
      if (!v.lib) return;
      from = choice.playlist;
      tracks = named ? named.tracks.slice() : [];
    }
    v.builder = { tracks: (tracks || []).slice(), from, fromTracks: from ? (tracks || []).slice() : null };
    v.music = choice.music_mode || "music";
    v.guidance = choice.guidance || "none";
    v.seeded = sessionId;
  }

  async function sendChoice(id) {
    const v = view(id);
    const c = I.choiceArgs({ music_mode: v.music, guidance: v.guidance, builder: v.builder });
    if (c.error) { v.result = { level: "error", lines: [c.error] }; return; }
    v.sending = true;
    v.result = { level: "none", lines: ["Sent — waiting for the room…"] };
    tablet().render();
    const reply = await tablet().request(id, "choose", c.args);
    v.sending = false;
    v.result = I.choiceReplyView(reply);
    tablet().render();
  }

  // --- the plan ----------------------------------------------------------------------------

  function planForm(v) {
    const form = {
      session_id: $("i-session-id").value, patient_ref: $("i-patient-ref").value,
      session_number: $("i-session-number").value, music_mode: v.music, guidance: v.guidance, builder: v.builder,
    };
    for (const f of I.PROTOCOL_FIELDS) form[f.key] = $("i-" + f.key).value;
    return form;
  }

  function checkPlan(v) {
    return I.buildPlan(planForm(v)).problems;
  }

  /** Publish the plan retained on the room's `plan` topic (QoS 1), as roomctl does, once the
   * page finds nothing wrong with it; the room's answer comes as an event. */
  function publishPlan(id) {
    const v = view(id);
    const a = tablet();
    const built = I.buildPlan(planForm(v));
    v.problems = built.problems;
    if (!built.plan || !a.client || !a.connected) {
      if (built.plan) v.problems = ["Not connected to the broker: not published."];
      a.render();
      return;
    }
    const r = a.rooms.get(id);
    const sent = { afterSeq: r ? r.maxSeq : 0, at: Date.now(), error: null };
    v.plan = sent;
    a.client.publish(a.prefix + "/rooms/" + id + "/plan", JSON.stringify(built.plan), { qos: 1, retain: true }, (err) => {
      if (err) sent.error = "Not published: " + err.message;
      a.render();
    });
    a.render();
  }

  function planLines(v, r) {
    if (v.problems && v.problems.length) return { level: "error", lines: ["Not published — fix first:"].concat(v.problems) };
    if (!v.plan) return v.problems ? { level: "ok", lines: ["Nothing wrong found: the plan can be published."] } : null;
    if (v.plan.error) return { level: "error", lines: [v.plan.error] };
    const outcome = I.planOutcome(r.events, v.plan.afterSeq);
    if (outcome) return { level: outcome.ok ? "ok" : "error", lines: outcome.lines };
    if (Date.now() - v.plan.at > PLAN_ANSWER_MS) {
      return { level: "warn", lines: ["No answer from the room within " + PLAN_ANSWER_MS / 1000 + " s: it is offline, or this plan is the same as the last one it saw (it answers a plan once)."] };
    }
    return { level: "none", lines: ["Published (retained) — waiting for the room's answer…"] };
  }

  // --- drawing -----------------------------------------------------------------------------

  function resultHtml(res) {
    return res ? res.lines.map((line, i) => '<li class="' + esc(res.level) + '"' + (i ? "" : ' data-head="1"') + ">" + esc(line) + "</li>").join("") : "";
  }

  function trackHtml(t, canPreview, canAdd) {
    return '<li data-path="' + esc(t.path) + '"><span class="i-name">' + esc(t.title || t.path) + '<span class="i-path">' + esc(t.path) + "</span></span>" +
      '<span class="mono">' + esc(I.fmtLength(t.duration_s)) + "</span>" +
      '<button type="button" class="act" data-i="preview" data-path="' + esc(t.path) + '"' + (canPreview ? "" : " disabled") + ">Preview</button>" +
      (canAdd ? '<button type="button" class="act" data-i="add" data-path="' + esc(t.path) + '">Add</button>' : "") + "</li>";
  }

  /** Keep the shared plan inputs per room: a glance at another room does not lose them. */
  function switchRoom(card, id) {
    const was = card.dataset.room;
    if (was === id) return;
    if (was) for (const k of PLAN_INPUTS) view(was).form[k] = $(k).value;
    for (const k of PLAN_INPUTS) $(k).value = view(id).form[k] !== undefined ? view(id).form[k] : k === "i-session-number" ? "1" : "";
    card.dataset.room = id;
  }

  function draw(r) {
    const a = tablet();
    const card = $("intentions-card");
    const s = r.state || {};
    const phase = s.phase || "idle";
    const choosing = I.CHOICE_PHASES.indexOf(phase) >= 0;
    const planning = I.PLAN_PHASES.indexOf(phase) >= 0;
    card.hidden = !(choosing || planning);
    if (card.hidden) return;
    switchRoom(card, r.id);
    const v = view(r.id);
    if (a.connected && (v.libState === "none" || (v.libState === "failed" && Date.now() - v.libAt > RETRY_MS))) readLibrary(r.id);
    const choice = choosing ? I.currentChoice(r.events, s.session_id) : null;
    if (choosing) seed(v, choice, s.session_id);

    setText("i-title", choosing ? "The patient's choice — music and guidance" : "Plan the next session — music and guidance");
    setText("i-mode-note", choosing ? "The room takes a choice until the infusion phase." : "A plan is published while no session runs.");
    $("i-current").hidden = !choosing;
    setHtml("i-current", choosing ? "<b>Now:</b> " + esc(I.choiceText(choice)) + (choice && choice.warnings.length ? '<br><span class="i-warn-line">WARNING: ' + esc(choice.warnings.join("; ")) + "</span>" : "") : "");

    const lib = v.lib || { tracks: [], playlists: [], range: null };
    const split = I.splitTracks(lib.tracks);
    const canPreview = a.connected && choosing;
    setText("i-lib-note", v.libNote + (choosing ? "" : " · Preview works from check-in to pre-infusion."));
    setText("i-preview-note", v.previewNote);
    setHtml("i-playlists", lib.playlists.length ? lib.playlists.map((p) =>
      '<li data-name="' + esc(p.name) + '"><span class="i-name">' + esc(p.name) + '<span class="i-path">' + p.tracks.length + " track" + (p.tracks.length === 1 ? "" : "s") + "</span></span>" +
      '<span class="mono">' + esc(I.fmtLength(p.duration_s)) + '</span><button type="button" class="act" data-i="use" data-name="' + esc(p.name) + '">Use</button></li>').join("") : '<li class="none">No named playlists</li>');
    setHtml("i-tracks", split.music.length ? split.music.map((t) => trackHtml(t, canPreview, true)).join("") : '<li class="none">No music tracks</li>');
    setHtml("i-guidance", split.guidance.length ? split.guidance.map((t) => trackHtml(t, canPreview, false)).join("") : '<li class="none">No guidance tracks</li>');

    const b = v.builder;
    const named = b.from && I.playlistValue(b) === b.from;
    setText("i-from", b.from ? (named ? "(the named playlist “" + b.from + "”)" : "(from “" + b.from + "”, changed: sent as these tracks)") : b.tracks.length ? "(these tracks, in this order)" : "");
    const n = b.tracks.length;
    setHtml("i-playlist", n ? b.tracks.map((p, i) => {
      const t = lib.tracks.find((x) => x.path === p) || { path: p, title: p, duration_s: null };
      return '<li data-index="' + i + '"><span class="i-num">' + (i + 1) + ".</span>" +
        '<span class="i-name">' + esc(t.title || p) + '<span class="i-path">' + esc(p) + "</span></span>" +
        '<span class="mono">' + esc(I.fmtLength(t.duration_s)) + "</span>" +
        '<button type="button" class="act" data-i="up" data-index="' + i + '" aria-label="Move up"' + (i === 0 ? " disabled" : "") + ">↑</button>" +
        '<button type="button" class="act" data-i="down" data-index="' + i + '" aria-label="Move down"' + (i === n - 1 ? " disabled" : "") + ">↓</button>" +
        '<button type="button" class="act" data-i="remove" data-index="' + i + '" aria-label="Remove">✕</button></li>';
    }).join("") : '<li class="none">Empty: use a named playlist or add tracks</li>');
    const total = v.music === "music" ? I.rangeCheck(I.playlistTotal(b.tracks, lib.tracks), lib.range) : { level: "empty", text: "No music: the playlist is not used." };
    $("i-total").className = "i-total " + total.level;
    setText("i-total", total.text);
    for (const el of document.querySelectorAll('#intentions-card input[name="i-music"]')) el.checked = el.value === v.music;
    for (const el of document.querySelectorAll('#intentions-card input[name="i-guide"]')) el.checked = el.value === v.guidance;

    $("i-choose-part").hidden = !choosing;
    $("i-send").disabled = !(a.connected && choosing) || v.sending;
    setHtml("i-result", resultHtml(v.result));
    $("i-plan").hidden = !planning;
    $("i-publish").disabled = !(a.connected && planning);
    setHtml("i-plan-problems", resultHtml(planning ? planLines(v, r) : null));
    $("i-rescan").disabled = !a.connected || v.libState === "loading";
  }

  document.addEventListener("DOMContentLoaded", () => {
    const card = $("intentions-card");
    card.addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-i]");
      if (!b || b.disabled || !card.dataset.room) return;
      ev.preventDefault();
      const act = ACTIONS[b.dataset.i];
      if (act) act(card.dataset.room, view(card.dataset.room), b);
      tablet().render();
    });
    card.addEventListener("change", (ev) => {
      const v = card.dataset.room && view(card.dataset.room);
      if (!v) return;
      if (ev.target.name === "i-music") v.music = ev.target.value;
      if (ev.target.name === "i-guide") v.guidance = ev.target.value;
      v.result = null;
      tablet().render();
    });
    $("i-plan").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (card.dataset.room) publishPlan(card.dataset.room);
    });
  });

  window.IntentionsView = { draw };
})();
