// Unit tests of the tablet's rolling context: `node --test tests/clinicd/course_context.test.js`.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const C = require(path.join(__dirname, "..", "..", "mqtt_bridge", "tablet", "course.js"));

function session(n, extra) {
  return Object.assign({
    session_id: "s" + n, session_number: n, room_id: n % 2 ? "room-3" : "room-5",
    started_at: "2026-01-0" + n + "T14:00:00.000Z", ended_at: null, end_reason: "discharged",
    music_mode: "music", playlist: ["a.ogg", "b.ogg"], guidance: "breathing", dose: null,
    notes: [], notes_status: "fetched", side_effects: [], adverse_events: [],
    bp_baseline: { sys: 120, dia: 80 }, bp_peak: { sys: 150, dia: 95 },
    bp: [{ sys: 120, dia: 80 }, { sys: 150, dia: 95 }], spo2_min: 93, alarms: [], calls: 0,
    music_played: [{ track: "a.ogg", played_s: 540 }], music_stopped: ["playlist_ended"],
  }, extra || {});
}

const COURSE = {
  patient_ref: "P-1",
  sessions: [
    session(1, {
      notes: [{ kind: "debrief", by: "dr-a", ts: "t", text: "the cello carried her" },
              { kind: "intentions", by: "dr-a", ts: "t", text: "to rest" }],
      side_effects: [{ items: ["nausea"], note: "mild" }],
      dose: { total_mg: 35, dose_mg_per_kg: 0.5, weight_kg: 70 },
    }),
    session(2, { end_reason: null }),
  ],
  flags: [{ session_id: "s1", code: "too_soon", message: "early" },
          { session_id: "s2", code: "late", message: "12 days" }],
};

test("shown only at check-in, integration and intentions, with a patient", () => {
  assert.equal(C.wanted({ phase: "check_in", patient_ref: "P-1" }), true);
  assert.equal(C.wanted({ phase: "intentions", patient_ref: "P-1" }), true);
  assert.equal(C.wanted({ phase: "infusion", patient_ref: "P-1" }), false);
  assert.equal(C.wanted({ phase: "check_in", patient_ref: null }), false);
  assert.equal(C.contextView(COURSE, { phase: "infusion", patient_ref: "P-1", session_id: "s2" }), null);
  assert.equal(C.contextView(COURSE, { phase: "check_in", patient_ref: "P-9", session_id: "x" }), null);
});

test("session N shows session N-1: music and how it went, notes, side effects, BP", () => {
  const view = C.contextView(COURSE, { phase: "integration", patient_ref: "P-1", session_id: "s2" });
  assert.equal(view.title, "Previous session (1)");
  const rows = Object.fromEntries(view.rows.map(([k, v]) => [k, v]));
  assert.equal(rows["Music chosen"], "Music: a.ogg, b.ogg · guidance breathing");
  assert.equal(rows["How it went"], "Played a.ogg (9 min) · stopped: playlist_ended");
  assert.equal(rows.Intentions, "to rest");
  assert.equal(rows.Debrief, "the cello carried her");
  assert.equal(rows["Side effects"], "nausea (mild)");
  assert.equal(rows["Blood pressure"], "baseline 120/80 · peak 150/95 · 120/80 → 150/95 · SpO2 min 93%");
  assert.equal(rows.Dose, "35 mg (0.5 mg/kg)");
  // A record that no side effects were seen says so (nothing recorded: "None recorded").
  const none = C.sessionRows(session(1, { side_effects: [{ items: [] }] }));
  assert.equal(Object.fromEntries(none)["Side effects"], "none");
  assert.equal(Object.fromEntries(C.sessionRows(session(1)))["Side effects"], "None recorded");
  // Intentions come before the debrief, as the session went.
  const labels = view.rows.map(([k]) => k);
  assert.ok(labels.indexOf("Intentions") < labels.indexOf("Debrief"));
});

test("the course at a glance marks the current session and puts its flags first", () => {
  const view = C.contextView(COURSE, { phase: "check_in", patient_ref: "P-1", session_id: "s2" });
  assert.deepEqual(view.glance.lines.map((l) => l.current), [false, true]);
  assert.match(view.glance.lines[1].text, /^#2 · .* · room-5 · in progress$/);
  assert.deepEqual(view.glance.flags.map((f) => f.code), ["late", "too_soon"]);
});

test("the first session has no previous one; a session not yet archived follows the last", () => {
  const first = C.contextView(COURSE, { phase: "check_in", patient_ref: "P-1", session_id: "s1" });
  assert.equal(first.title, "First session of the course");
  assert.deepEqual(first.rows, []);
  const next = C.contextView(COURSE, { phase: "check_in", patient_ref: "P-1", session_id: "s3" });
  assert.equal(next.title, "Previous session (2)");
  const rows = Object.fromEntries(next.rows.map(([k, v]) => [k, v]));
  assert.equal(rows.Notes, "No notes.");
  const unsupported = C.sessionRows(session(4, { notes_status: "unsupported" }));
  assert.ok(unsupported.some(([k, v]) => k === "Notes" && v === "The room kept no notes."));
});
