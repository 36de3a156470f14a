/* The clinical record on the room view: a note per phase, the session's notes (fetched on a
 * response topic of this page's own), the dose, side effects at the debrief, adverse events,
 * the debrief's length beside the phase timer, and the confirmations recorded without gating.
 * The DOM side of clinical.js (ClinicalLogic); it hooks into app.js through `window.tablet`
 * (request, cmdTopic, setHtml; drawClinical, onPrivateReply, onLogout).
 *
 * Note text is clinical content: it lives in this page's memory only (drafts, the fetched
 * list), never in localStorage, and the room never puts it on `events`. */
(function () {
  "use strict";
  const L = window.RoomLogic;
  const C = window.ClinicalLogic;
  const app = window.tablet;
  const $ = (id) => document.getElementById(id);
  const REPLY_MS = L.REPLY_TIMEOUT_MS;
  /** Confirmations beside the discharge gate's, marked once recorded this session. */
  const CONFIRMS = {
    psych_ready: "Confirm ready to leave", reminders_given: "Confirm reminders given",
    mindfulness_done: "Mindfulness done", blindfold_offered: "Blindfold offered",
  };
  const forms = new Map(); // room id -> {drafts: {session|kind: text}, kindPhase, said, notes}
  const waiting = new Map(); // response topic -> {rid, room, timer}
  let shown = null; // the room whose fields are on screen

  function form(id) {
    let f = forms.get(id);
    if (!f) {
      f = { drafts: {}, kindPhase: null, said: {}, notes: null };
      forms.set(id, f);
    }
    return f;
  }

  function say(roomId, box, text, level) {
    form(roomId).said[box] = { text, level: level || "" };
    if (app.current === roomId) drawSaid(form(roomId));
  }

  function drawSaid(f) {
    for (const box of ["note", "dose", "effects", "ae"]) {
      const el = $("cl-" + box + "-said");
      const s = f.said[box] || { text: "", level: "" };
      if (el.textContent !== s.text) el.textContent = s.text;
      el.className = "said small-text " + s.level;
    }
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour12: false });
  }

  /** Send a verb through the page's request (the reply is also in the action log) and put
   * its outcome in words under the form. */
  async function send(box, verb, args, done) {
    const id = app.current;
    say(id, box, "Sent, waiting for the room…", "");
    const reply = await app.request(id, verb, args);
    if (!reply) return say(id, box, "No reply within " + REPLY_MS / 1000 + " s — the room may not have received it.", "error");
    if (!reply.ok) return say(id, box, L.replyText(reply), "error");
    done(id, reply);
  }

  // --- notes --------------------------------------------------------------------------

  function draftKey(s, kind) {
    return (s.session_id || "") + "|" + kind;
  }

  function keepDraft() {
    if (!shown || !app.rooms.has(shown)) return;
    const s = app.rooms.get(shown).state || {};
    form(shown).drafts[draftKey(s, $("cl-note-kind").value)] = $("cl-note-text").value;
  }

  function showDraft(f, s) {
    $("cl-note-text").value = f.drafts[draftKey(s, $("cl-note-kind").value)] || "";
    drawCount();
  }

  function drawCount() {
    const count = C.noteCount($("cl-note-text").value);
    $("cl-note-count").textContent = count.text;
    $("cl-note-count").className = "mono small-text count" + (count.over ? " over" : "");
  }

  function saveNote() {
    const id = app.current;
    const kind = $("cl-note-kind").value;
    const made = C.noteArgs(kind, $("cl-note-text").value);
    if (made.error) return say(id, "note", made.error, "error");
    const s = app.rooms.get(id).state || {};
    send("note", "note", made.args, (rid, reply) => {
      const f = form(rid);
      delete f.drafts[draftKey(s, kind)];
      if (app.current === rid && $("cl-note-kind").value === kind) $("cl-note-text").value = "";
      drawCount();
      say(rid, "note", "Saved at " + clock() + ": " + kind + " note, " + reply.result.chars + " characters.", "ok");
    });
  }

  /** `notes` answers only on an MQTT 5 response topic under the room's replies/: subscribe to
   * one of our own, then ask with it and a correlation id. */
  function fetchNotes() {
    const id = app.current;
    if (!app.client || !app.connected) return say(id, "note", "Not connected to the broker: not sent.", "error");
    const rid = "tab-" + Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
    const topic = C.responseTopic(app.prefix, id, rid);
    say(id, "note", "Asking the room for this session's notes…", "");
    app.client.subscribe(topic, { qos: 1 }, (err, granted) => {
      if (err || !granted || !granted[0] || granted[0].qos > 2) {
        return say(id, "note", "The broker refused this user the room's replies/ (the clinician role reads them).", "error");
      }
      const entry = { rid, room: id };
      entry.timer = setTimeout(() => {
        waiting.delete(topic);
        app.client.unsubscribe(topic);
        say(id, "note", "No notes within " + REPLY_MS / 1000 + " s — the room may not have received the request.", "error");
      }, REPLY_MS);
      waiting.set(topic, entry);
      const body = JSON.stringify({ request_id: rid, by: app.by });
      app.client.publish(app.cmdTopic(id, "notes"), body, {
        qos: 1, properties: { responseTopic: topic, correlationData: rid, messageExpiryInterval: 30 },
      });
    });
  }

  /** A message on a replies/… topic: the answer to a `notes` request of ours. */
  function onPrivateReply(topic, text, packet) {
    const entry = waiting.get(topic);
    if (!entry) return;
    const corr = packet.properties && packet.properties.correlationData;
    let reply;
    try { reply = JSON.parse(text); } catch (e) { return; }
    if (!reply || reply.request_id !== entry.rid) return;
    if (corr && new TextDecoder().decode(corr) !== entry.rid) return;
    clearTimeout(entry.timer);
    waiting.delete(topic);
    app.client.unsubscribe(topic);
    const f = form(entry.room);
    if (!reply.ok) return say(entry.room, "note", L.replyText(reply), "error");
    f.notes = { session: reply.result.session_id, list: C.notesList(reply.result), at: clock() };
    say(entry.room, "note", f.notes.list.length + " note" + (f.notes.list.length === 1 ? "" : "s") + " of session " + (f.notes.session || "-") + ", fetched at " + f.notes.at + ".", "ok");
    if (app.current === entry.room) drawNotes(f);
  }

  function drawNotes(f) {
    const box = $("cl-notes");
    box.textContent = "";
    for (const n of (f.notes && f.notes.list) || []) {
      const li = document.createElement("li");
      li.dataset.kind = n.kind;
      const head = document.createElement("div");
      head.className = "muted small-text";
      head.textContent = n.kind + " · " + n.by + " · " + String(n.ts || "").slice(11, 19);
      const body = document.createElement("div");
      body.className = "note-text";
      body.textContent = n.text;
      li.append(head, body);
      box.append(li);
    }
  }

  // --- dose, side effects, adverse events ---------------------------------------------

  function recompute() {
    const total = C.doseTotal($("cl-weight").value, $("cl-per-kg").value);
    if (total !== null) $("cl-total").value = String(total); // still editable by hand
  }

  function recordDose() {
    const made = C.doseArgs($("cl-weight").value, $("cl-per-kg").value, $("cl-total").value);
    if (made.error) return say(app.current, "dose", made.error, "error");
    send("dose", "record_dose", made.args, (rid, reply) => {
      const warn = C.doseWarnings(reply);
      const a = made.args;
      say(rid, "dose", (warn ? warn + " — " : "") + "Recorded at " + clock() + ": " + a.total_mg + " mg (" + a.weight_kg + " kg × " + a.dose_mg_per_kg + " mg/kg).", warn ? "warn" : "ok");
    });
  }

  function recordEffects() {
    const s = app.rooms.get(app.current).state || {};
    const ticked = Array.from(document.querySelectorAll("#cl-effects input:checked"), (c) => c.value);
    const made = C.sideEffectsArgs((s.protocol && s.protocol.side_effects) || [], ticked, $("cl-effects-note").value);
    if (made.error) return say(app.current, "effects", made.error, "error");
    send("effects", "side_effects", made.args, (rid, reply) => {
      if (app.current === rid) {
        $("cl-effects-note").value = "";
        for (const box of document.querySelectorAll("#cl-effects input")) box.checked = false;
      }
      const items = reply.result.items || [];
      say(rid, "effects", "Recorded at " + clock() + ": " + (items.length ? items.join(", ") : "no side effects") + ".", "ok");
    });
  }

  function recordAdverse() {
    const made = C.adverseArgs($("cl-ae-kind").value, $("cl-ae-severity").value, $("cl-ae-action").value, $("cl-ae-text").value);
    if (made.error) return say(app.current, "ae", made.error, "error");
    send("ae", "adverse_event", made.args, (rid) => {
      if (app.current === rid) for (const f of ["cl-ae-kind", "cl-ae-severity", "cl-ae-action", "cl-ae-text"]) $(f).value = "";
      const a = made.args;
      say(rid, "ae", "Recorded at " + clock() + ": " + a.kind + " (" + a.severity + "), action: " + a.action + ".", "ok");
    });
  }

  // --- drawing (called by app.js at every redraw of the room view) ----------------------

  /** A new room on screen: its own drafts, empty fields (never another patient's values). */
  function switchTo(r) {
    keepDraft();
    shown = r.id;
    for (const f of ["cl-weight", "cl-per-kg", "cl-total", "cl-effects-note", "cl-ae-kind", "cl-ae-severity", "cl-ae-action", "cl-ae-text"]) $(f).value = "";
    $("cl-effects").dataset.key = "";
    const f = form(r.id);
    f.kindPhase = null;
    drawSaid(f);
    drawNotes(f);
  }

  function drawClinical(r, s) {
    if (shown !== r.id) switchTo(r);
    const f = form(r.id);
    const phase = s.phase || "idle";
    const protocol = s.protocol || {};
    // The note's kind follows the phase (the clinician may pick observation meanwhile).
    if (f.kindPhase !== phase) {
      keepDraft();
      f.kindPhase = phase;
      $("cl-note-kind").value = C.noteKind(phase);
      showDraft(f, s);
    }
    const can = (verb) => app.connected && L.allowed(verb, phase);
    $("cl-note-send").disabled = !can("note");
    $("cl-notes-fetch").disabled = !app.connected;
    $("cl-dose-send").disabled = !can("record_dose");
    $("cl-effects-send").disabled = !can("side_effects");
    $("cl-ae-send").disabled = !can("adverse_event");
    if (!$("cl-per-kg").value && document.activeElement !== $("cl-per-kg") && protocol.dose_mg_per_kg) {
      $("cl-per-kg").value = String(protocol.dose_mg_per_kg);
    }
    // The clinic's side effects as checkboxes (rebuilt only when the list changes).
    const list = protocol.side_effects || [];
    const key = JSON.stringify(list);
    if ($("cl-effects").dataset.key !== key) {
      $("cl-effects").dataset.key = key;
      $("cl-effects").textContent = "";
      for (const item of list) {
        const label = document.createElement("label");
        label.className = "check";
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = item;
        label.append(box, " " + item);
        $("cl-effects").append(label);
      }
    }
    const debrief = C.debriefStatus(s, r.events);
    const due = $("cl-debrief-due");
    due.hidden = !debrief;
    if (debrief && due.textContent !== debrief.text) due.textContent = debrief.text;
    due.className = "debrief-due small-text " + (debrief ? debrief.level : "");
    for (const item of Object.keys(CONFIRMS)) {
      const b = document.querySelector('#session-actions [data-item="' + item + '"]');
      if (!b) continue;
      const text = CONFIRMS[item] + (r.confirmed[item] ? " ✓" : "");
      if (b.textContent !== text) b.textContent = text;
      b.classList.toggle("done", !!r.confirmed[item]);
    }
    const lines = C.documented(r.events, s.session_id);
    app.setHtml($("cl-documented"), lines.map((l) => '<li class="' + (l.warn ? "warn" : "") + '">' + esc(l.text) + "</li>").join("") || '<li class="muted">Nothing documented yet.</li>');
  }

  function esc(text) {
    const d = document.createElement("div");
    d.textContent = String(text);
    return d.innerHTML;
  }

  // --- wiring -------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("cl-note-kind").innerHTML = C.NOTE_KINDS.map((k) => '<option value="' + k + '">' + k + "</option>").join("");
    const due = document.createElement("div");
    due.id = "cl-debrief-due";
    due.hidden = true;
    $("r-phase-time").after(due);
    $("cl-note-kind").addEventListener("change", () => {
      const r = app.rooms.get(app.current);
      if (r) showDraft(form(r.id), r.state || {});
    });
    $("cl-note-text").addEventListener("input", () => { keepDraft(); drawCount(); });
    $("cl-note-send").addEventListener("click", saveNote);
    $("cl-notes-fetch").addEventListener("click", fetchNotes);
    $("cl-weight").addEventListener("input", recompute);
    $("cl-per-kg").addEventListener("input", recompute);
    $("cl-dose-send").addEventListener("click", recordDose);
    $("cl-effects-send").addEventListener("click", recordEffects);
    $("cl-ae-send").addEventListener("click", recordAdverse);
    drawCount();
  });
  /** Logged out: nothing of the clinical record stays in the page for the next user. */
  function forget() {
    for (const entry of waiting.values()) clearTimeout(entry.timer);
    waiting.clear();
    forms.clear();
    shown = null;
    for (const f of ["cl-note-text", "cl-effects-note", "cl-ae-text", "cl-ae-action", "cl-ae-kind", "cl-weight", "cl-total"]) $(f).value = "";
    $("cl-notes").textContent = "";
  }

  app.drawClinical = drawClinical;
  app.onPrivateReply = onPrivateReply;
  app.onLogout = forget;
})();
