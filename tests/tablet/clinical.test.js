// Unit tests of the clinical forms' pure logic: `node --test tests/tablet/clinical.test.js`.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const C = require(path.join(__dirname, "..", "..", "mqtt_bridge", "tablet", "clinical.js"));

test("the note's kind follows the phase; other active phases note an observation", () => {
  assert.equal(C.noteKind("check_in"), "checkin");
  for (const kind of ["integration", "intentions", "debrief", "preparation"]) assert.equal(C.noteKind(kind), kind);
  for (const phase of ["pre_infusion", "infusion", "discharge"]) assert.equal(C.noteKind(phase), "observation");
  assert.deepEqual(new Set(Object.values(C.PHASE_NOTE_KIND)).size, 5);
  for (const kind of Object.values(C.PHASE_NOTE_KIND)) assert.ok(C.NOTE_KINDS.includes(kind));
});

test("the note counts characters as the room does and refuses over 4,000", () => {
  assert.equal(C.chars("😀é"), 2); // code points, not UTF-16 units
  assert.deepEqual(C.noteCount("x".repeat(4000)).over, false);
  const over = C.noteCount("😀".repeat(4001));
  assert.equal(over.over, true);
  assert.match(over.text, /^4,001 \/ 4,000 — 1 too many/);
  assert.deepEqual(C.noteArgs("debrief", "felt calm").args, { kind: "debrief", text: "felt calm" });
  assert.match(C.noteArgs("debrief", "x".repeat(4001)).error, /4,001 characters, at most 4,000/);
  assert.match(C.noteArgs("debrief", " … ").error, /Write the note first/);
  assert.match(C.noteArgs("diary", "text").error, /kind/);
});

test("the dose total is weight × mg/kg; each field is checked by name", () => {
  assert.equal(C.doseTotal("70", "0.5"), 35);
  assert.equal(C.doseTotal("72,5", "0.5"), 36.3);
  assert.equal(C.doseTotal("", "0.5"), null);
  assert.deepEqual(C.doseArgs("70", "0.5", "35").args, { weight_kg: 70, dose_mg_per_kg: 0.5, total_mg: 35 });
  assert.match(C.doseArgs("", "0.5", "35").error, /^weight \(kg\): required/);
  assert.match(C.doseArgs("70", "abc", "35").error, /^mg\/kg: a number/);
  assert.match(C.doseArgs("70", "0.5", "2500").error, /^total \(mg\): .* at most 2000/);
  const reply = { ok: true, result: { expected_total_mg: 35, warnings: ["total_mg 50 mg is not weight × dose"] } };
  assert.equal(C.doseWarnings(reply), "WARNING: total_mg 50 mg is not weight × dose");
  assert.equal(C.doseWarnings({ ok: true, result: { warnings: [] } }), "");
});

test("side effects keep the clinic's order; none ticked records none", () => {
  const list = ["nausea", "dizziness", "headache"];
  assert.deepEqual(C.sideEffectsArgs(list, ["headache", "nausea"], "").args, { items: ["nausea", "headache"] });
  assert.deepEqual(C.sideEffectsArgs(list, [], " ").args, { items: [] });
  assert.deepEqual(C.sideEffectsArgs(list, ["nausea"], "mild, settled").args, { items: ["nausea"], note: "mild, settled" });
});

test("an adverse event needs a kind, a severity and an action in words", () => {
  assert.deepEqual(C.adverseArgs(" emesis ", "mild", "antiemetic given", "").args, { kind: "emesis", severity: "mild", action: "antiemetic given" });
  assert.match(C.adverseArgs("", "mild", "x").error, /^Kind/);
  assert.match(C.adverseArgs("emesis", "bad", "x").error, /^Severity/);
  assert.match(C.adverseArgs("emesis", "mild", " - ").error, /^Action/);
  assert.equal(C.adverseArgs("emesis", "severe", "stopped", "details").args.text, "details");
});

test("the notes come back on a response topic of the page's own, oldest first", () => {
  assert.equal(C.responseTopic("clinic", "room-7", "tab-01"), "clinic/rooms/room-7/replies/tab-01");
  const list = C.notesList({ notes: [
    { note_id: "2", kind: "debrief", by: "dr-b", ts: "2026-01-05T10:00:00.000Z", text: "late" },
    { note_id: "1", kind: "checkin", by: "dr-a", ts: "2026-01-05T09:00:00.000Z", text: "early" },
  ] });
  assert.deepEqual(list.map((n) => n.text), ["early", "late"]);
  assert.deepEqual(C.notesList(null), []);
});

test("the debrief's length: the range, then 20 min reached, then 30 min", () => {
  const state = { phase: "debrief", session_id: "s1", phase_started_at: "2026-01-05T10:00:00.000Z", protocol: { debrief_minutes: [20, 30] } };
  assert.deepEqual(C.debriefStatus(state, []), { text: "Debrief 20–30 min", level: "" });
  const least = { type: "debrief_due", session_id: "s1", ts: "2026-01-05T10:20:00.000Z", data: { bound: "least", minutes: 20 } };
  assert.equal(C.debriefStatus(state, [least]).level, "due");
  assert.match(C.debriefStatus(state, [least]).text, /20 min reached: may end now/);
  const most = { ...least, ts: "2026-01-05T10:30:00.000Z", data: { bound: "most", minutes: 30 } };
  assert.equal(C.debriefStatus(state, [least, most]).level, "over");
  // Another session's, or before this debrief began, does not count.
  assert.equal(C.debriefStatus(state, [{ ...most, session_id: "s0" }]).level, "");
  assert.equal(C.debriefStatus(state, [{ ...most, ts: "2026-01-05T09:00:00.000Z" }]).level, "");
  assert.equal(C.debriefStatus({ ...state, phase: "infusion" }, [most]), null);
});

test("what the session documented, in words, never with a note's text", () => {
  const events = [
    { seq: 1, session_id: "s1", type: "note_recorded", data: { note_id: "n1", kind: "intentions", by: "dr-a", chars: 12 } },
    { seq: 2, session_id: "s1", type: "dose_recorded", data: { weight_kg: 70, dose_mg_per_kg: 0.5, total_mg: 50, by: "dr-a", warnings: ["total_mg 50 mg is not weight × dose"] } },
    { seq: 3, session_id: "s1", type: "side_effects_recorded", data: { items: [], by: "dr-a", note_id: null } },
    { seq: 4, session_id: "s1", type: "adverse_event_recorded", data: { kind: "emesis", severity: "mild", action: "bowl", by: "dr-a", note_id: "n2" } },
    { seq: 5, session_id: "s1", type: "confirmed", data: { item: "blindfold_offered", by: "dr-a" } },
    { seq: 6, session_id: "s0", type: "note_recorded", data: { kind: "debrief", by: "dr-a", chars: 3 } },
  ];
  const lines = C.documented(events, "s1");
  assert.deepEqual(lines.map((l) => l.seq), [1, 2, 3, 4, 5]);
  assert.equal(lines[0].text, "Note (intentions, 12 characters) by dr-a");
  assert.ok(lines[1].warn && /WARNING/.test(lines[1].text));
  assert.equal(lines[2].text, "Side effects: none by dr-a");
  assert.equal(lines[3].text, "Adverse event by dr-a: emesis (mild), action: bowl");
  assert.equal(lines[4].text, "Blindfold offered by dr-a");
});
