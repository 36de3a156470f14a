/* The clinical record's forms, their pure part: notes, dose, side effects, adverse events,
 * the debrief's length. No DOM, no MQTT. Loaded by index.html as a plain script (global
 * `ClinicalLogic`) and by `node --test` (tests/tablet/clinical.test.js); the page's side is
 * clinical-forms.js. Every check here is the room's own, made before sending so that the
 * clinician hears it at once; the room checks again. */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory(require("./logic.js"));
  else root.ClinicalLogic = factory(root.RoomLogic);
})(typeof self !== "undefined" ? self : this, function (L) {
  "use strict";

  /** The room refuses a longer note (never cuts it). */
  const NOTE_LIMIT = 4000;
  const NOTE_KINDS = ["checkin", "integration", "intentions", "debrief", "preparation", "observation"];
  /** The note a phase invites; any other active phase: an observation. */
  const PHASE_NOTE_KIND = {
    check_in: "checkin", integration: "integration", intentions: "intentions",
    debrief: "debrief", preparation: "preparation",
  };
  const SEVERITIES = ["mild", "moderate", "severe"];
  /** The room's limits on record_dose (controller/models.py RecordDose). */
  const DOSE_LIMITS = { weight_kg: 400, dose_mg_per_kg: 10, total_mg: 2000 };
  const LABEL_MAX = 64;

  function noteKind(phase) {
    return PHASE_NOTE_KIND[phase] || "observation";
  }

  /** Characters as the room counts them (code points: an emoji is one, not two). */
  function chars(text) {
    return Array.from(String(text || "")).length;
  }

  /** The live count under the note: {n, over, text}. */
  function noteCount(text) {
    const n = chars(text);
    const over = n > NOTE_LIMIT;
    return {
      n, over,
      text: n.toLocaleString("en") + " / 4,000" + (over ? " — " + (n - NOTE_LIMIT).toLocaleString("en") + " too many: shorten it (the room refuses, never cuts)" : ""),
    };
  }

  const hasWords = L.hasWords; // letters or digits somewhere: what the room calls visible text

  /** A `note` command's arguments, or {error} in words (nothing is sent then). */
  function noteArgs(kind, text) {
    if (NOTE_KINDS.indexOf(kind) < 0) return { error: "Choose the kind of note (not sent)." };
    const body = String(text || "");
    if (!hasWords(body)) return { error: "Write the note first (not sent)." };
    const n = chars(body);
    if (n > NOTE_LIMIT) return { error: "The note has " + n.toLocaleString("en") + " characters, at most 4,000: shorten it (not sent)." };
    return { args: { kind, text: body } };
  }

  /** A number typed in a field: a finite number, null when empty, NaN when not a number. */
  function num(text) {
    const t = String(text === undefined || text === null ? "" : text).trim().replace(",", ".");
    if (!t) return null;
    return /^\d+(\.\d+)?$/.test(t) ? Number(t) : NaN;
  }

  /** weight × mg/kg, rounded to 0.1 mg; null when either is missing. */
  function doseTotal(weight, perKg) {
    const w = num(weight);
    const d = num(perKg);
    if (!(w > 0) || !(d > 0)) return null;
    return Math.round(w * d * 10) / 10;
  }

  /** A `record_dose` command's arguments from the three fields, or {error} naming the field. */
  function doseArgs(weight, perKg, total) {
    const fields = [["weight_kg", weight, "weight (kg)"], ["dose_mg_per_kg", perKg, "mg/kg"], ["total_mg", total, "total (mg)"]];
    const args = {};
    for (const [key, text, label] of fields) {
      const v = num(text);
      if (v === null) return { error: label + ": required (not sent)." };
      if (!(v > 0) || v > DOSE_LIMITS[key]) return { error: label + ": a number above 0 and at most " + DOSE_LIMITS[key] + " (not sent)." };
      args[key] = v;
    }
    return { args };
  }

  /** The warnings of a record_dose reply, in words ("" when none). */
  function doseWarnings(reply) {
    const w = (reply && reply.ok && reply.result && reply.result.warnings) || [];
    return w.length ? "WARNING: " + w.join("; ") : "";
  }

  /** A `side_effects` command's arguments: the items ticked, in the clinic's order, and the
   * note when it has words. An empty list records that none were seen. */
  function sideEffectsArgs(clinicList, ticked, note) {
    const items = (clinicList || []).filter((item) => ticked.indexOf(item) >= 0);
    const args = { items };
    if (hasWords(note)) {
      if (chars(note) > NOTE_LIMIT) return { error: "The side-effects note has more than 4,000 characters (not sent)." };
      args.note = String(note);
    }
    return { args };
  }

  /** An `adverse_event` command's arguments, or {error} naming the field. */
  function adverseArgs(kind, severity, action, text) {
    const k = String(kind || "").trim();
    if (!hasWords(k) || chars(k) > LABEL_MAX) return { error: "Kind: what happened, in a few words (at most 64 characters; not sent)." };
    if (SEVERITIES.indexOf(severity) < 0) return { error: "Severity: mild, moderate or severe (not sent)." };
    const a = String(action || "").trim();
    if (!hasWords(a)) return { error: "Action: what was done, in words (not sent)." };
    if (chars(a) > 500) return { error: "Action: at most 500 characters (not sent)." };
    const args = { kind: k, severity, action: a };
    if (hasWords(text)) {
      if (chars(text) > NOTE_LIMIT) return { error: "The note has more than 4,000 characters (not sent)." };
      args.text = String(text);
    }
    return { args };
  }

  /** Where the room sends a requester its notes: a response topic of the page's own under
   * the room's replies/ (the shipped ACL lets clinicians read replies/#, observers not). */
  function responseTopic(prefix, roomId, requestId) {
    return prefix + "/rooms/" + roomId + "/replies/" + requestId;
  }

  /** The notes of a `notes` reply, oldest first: [{kind, by, ts, text}]. */
  function notesList(result) {
    const notes = ((result && result.notes) || []).slice();
    notes.sort((a, b) => String(a.ts).localeCompare(String(b.ts)));
    return notes.map((n) => ({ kind: n.kind, by: n.by, ts: n.ts, text: String(n.text || "") }));
  }

  /**
   * The debrief's length against the protocol's 20–30 min, beside the phase timer:
   * {text, level: ""|"due"|"over"} or null outside the debrief. `due` comes from the room's
   * `debrief_due` events of this session (bound least, then most); before them, the elapsed
   * minutes against the range.
   */
  function debriefStatus(state, events) {
    if (!state || state.phase !== "debrief") return null;
    const range = (state.protocol && state.protocol.debrief_minutes) || [20, 30];
    const sid = state.session_id;
    let bound = null;
    const since = Date.parse(state.phase_started_at || "") || 0;
    for (const e of events || []) {
      if (e.type !== "debrief_due" || e.session_id !== sid || !e.data) continue;
      if (since && Date.parse(e.ts) < since) continue; // an earlier debrief of this session
      bound = e.data.bound;
    }
    const span = range[0] + "–" + range[1] + " min";
    if (bound === "most") return { text: "Debrief " + range[1] + " min reached: the protocol's longest (" + span + ")", level: "over" };
    if (bound === "least") return { text: "Debrief " + range[0] + " min reached: may end now (" + span + ")", level: "due" };
    return { text: "Debrief " + span, level: "" };
  }

  /** What this session documented, from its events (never any note's text): lines in words. */
  function documented(events, sessionId) {
    const out = [];
    for (const e of events || []) {
      if (!sessionId || e.session_id !== sessionId || !e.data) continue;
      const d = e.data;
      const who = d.by ? " by " + d.by : "";
      if (e.type === "note_recorded") out.push({ seq: e.seq, text: "Note (" + d.kind + ", " + d.chars + " characters)" + who });
      if (e.type === "dose_recorded") out.push({ seq: e.seq, warn: (d.warnings || []).length > 0, text: "Dose " + d.total_mg + " mg (" + d.weight_kg + " kg × " + d.dose_mg_per_kg + " mg/kg)" + who + ((d.warnings || []).length ? " — WARNING: " + d.warnings.join("; ") : "") });
      if (e.type === "side_effects_recorded") out.push({ seq: e.seq, text: "Side effects: " + ((d.items || []).length ? d.items.join(", ") : "none") + (d.note_id ? " (with a note)" : "") + who });
      if (e.type === "adverse_event_recorded") out.push({ seq: e.seq, warn: true, text: "Adverse event" + who + ": " + d.kind + " (" + d.severity + "), action: " + d.action });
      if (e.type === "confirmed" && (d.item === "mindfulness_done" || d.item === "blindfold_offered")) out.push({ seq: e.seq, text: (d.item === "mindfulness_done" ? "Mindfulness done" : "Blindfold offered") + who });
    }
    return out;
  }

  return {
    NOTE_LIMIT, NOTE_KINDS, PHASE_NOTE_KIND, SEVERITIES, noteKind, chars, noteCount,
    noteArgs, num, doseTotal, doseArgs, doseWarnings, sideEffectsArgs, adverseArgs,
    responseTopic, notesList, debriefStatus, documented,
  };
});
