// Unit tests of the intentions step's pure logic: `node --test tests/tablet/intentions.test.js`.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const I = require(path.join(__dirname, "..", "..", "mqtt_bridge", "tablet", "intentions.js"));

const TRACKS = [
  { path: "calm/01-dawn.wav", title: "01-dawn", duration_s: 25 * 60, kind: "music" },
  { path: "calm/02-drift.wav", title: "02-drift", duration_s: 20 * 60, kind: "music" },
  { path: "calm/03-tide.wav", title: "03-tide", duration_s: 12 * 60, kind: "music" },
  { path: "odd.ogg", title: "Odd", duration_s: null, kind: "music" },
  { path: "guidance/breathing.ogg", title: "Breathing", duration_s: 300, kind: "guidance" },
];

test("the library is read page by page, in order, without repeats, with the room's range", () => {
  let lib = I.addPage(null, { tracks: TRACKS.slice(0, 2), playlists: [{ name: "calm", tracks: ["calm/01-dawn.wav"], duration_s: 1500 }], total: 5, next_offset: 2, playlists_total: 1, playlist_minutes: [45, 70] });
  lib = I.addPage(lib, { tracks: TRACKS.slice(1), playlists: [{ name: "calm", tracks: [], duration_s: 0 }], total: 5, next_offset: null, playlists_total: 1 });
  assert.deepEqual(lib.tracks.map((t) => t.path), TRACKS.map((t) => t.path));
  assert.equal(lib.playlists.length, 1);
  assert.equal(lib.playlists[0].duration_s, 1500, "the first page's playlist is kept");
  assert.deepEqual(lib.range, [45, 70], "a later page without the range keeps the first one's");
  const split = I.splitTracks(lib.tracks);
  assert.deepEqual(split.guidance.map((t) => t.path), ["guidance/breathing.ogg"]);
  assert.equal(split.music.length, 4);
});

test("lengths read as mm:ss, and --:-- when the room could not read one", () => {
  assert.equal(I.fmtLength(25 * 60), "25:00");
  assert.equal(I.fmtLength(61.4), "01:01");
  assert.equal(I.fmtLength(3725), "1:02:05");
  assert.equal(I.fmtLength(null), "--:--");
});

test("the running total counts music only and names the tracks of unknown length", () => {
  assert.deepEqual(I.playlistTotal(["calm/01-dawn.wav", "calm/02-drift.wav"], TRACKS), { seconds: 2700, unknown: [] });
  assert.deepEqual(I.playlistTotal(["guidance/breathing.ogg", "calm/03-tide.wav"], TRACKS), { seconds: 720, unknown: [] });
  assert.deepEqual(I.playlistTotal(["odd.ogg", "gone.ogg", "calm/03-tide.wav"], TRACKS), { seconds: 720, unknown: ["odd.ogg", "gone.ogg"] });
});

test("the total against the protocol's range: short, within (ends included), long, unknown, empty", () => {
  const short = I.rangeCheck({ seconds: 45 * 60, unknown: [] }, [50, 60]);
  assert.equal(short.level, "warn");
  assert.equal(short.text, "Total 45:00 — SHORT: 05:00 under the 50–60 min the protocol expects");
  assert.equal(I.rangeCheck({ seconds: 50 * 60, unknown: [] }, [50, 60]).level, "ok");
  assert.equal(I.rangeCheck({ seconds: 60 * 60, unknown: [] }, [50, 60]).level, "ok");
  assert.match(I.rangeCheck({ seconds: 57 * 60, unknown: [] }, [50, 60]).text, /^Total 57:00 — within the 50–60 min/);
  const long = I.rangeCheck({ seconds: 62 * 60, unknown: [] }, [50, 60]);
  assert.equal(long.level, "warn");
  assert.match(long.text, /LONG: 02:00 over the 50–60 min/);
  assert.match(I.rangeCheck({ seconds: 600, unknown: ["odd.ogg"] }, [50, 60]).text, /at least 10:00 — the length of odd\.ogg is not known/);
  assert.equal(I.rangeCheck({ seconds: 0, unknown: [] }, [50, 60]).level, "empty");
  // The room's own range wins; without one, the seed's 50–60.
  assert.equal(I.rangeCheck({ seconds: 47 * 60, unknown: [] }, [45, 70]).level, "ok");
  assert.match(I.rangeCheck({ seconds: 47 * 60, unknown: [] }, null).text, /50–60 min/);
  assert.match(I.rangeCheck({ seconds: 60, unknown: [] }, [0.05, 0.1]).text, /0\.05–0\.1 min/);
});

test("reorder moves one step up or down and never past an end; remove takes one out", () => {
  const list = ["a", "b", "c"];
  assert.deepEqual(I.move(list, 2, -1), ["a", "c", "b"]);
  assert.deepEqual(I.move(list, 0, +1), ["b", "a", "c"]);
  assert.deepEqual(I.move(list, 0, -1), list);
  assert.deepEqual(I.move(list, 2, +1), list);
  assert.deepEqual(list, ["a", "b", "c"], "the original is not changed");
  assert.deepEqual(I.remove(list, 1), ["a", "c"]);
});

test("a named playlist is sent by name until it is edited, then as its paths", () => {
  const named = { from: "calm", fromTracks: ["a", "b"], tracks: ["a", "b"] };
  assert.equal(I.playlistValue(named), "calm");
  assert.deepEqual(I.playlistValue(Object.assign({}, named, { tracks: ["b", "a"] })), ["b", "a"]);
  assert.deepEqual(I.playlistValue({ from: null, tracks: ["x"] }), ["x"]);
});

test("choose's arguments: music needs a playlist; no music sends none", () => {
  assert.match(I.choiceArgs({ music_mode: "music", guidance: "none", builder: { tracks: [] } }).error, /needs a playlist/);
  assert.deepEqual(I.choiceArgs({ music_mode: "music", guidance: "breathing", builder: { tracks: ["a"] } }).args, { music_mode: "music", guidance: "breathing", playlist: ["a"] });
  assert.deepEqual(I.choiceArgs({ music_mode: "no_music", guidance: "clinician", builder: { tracks: ["a"] } }).args, { music_mode: "no_music", guidance: "clinician" });
});

test("the current choice: the plan, then each plan_amended over it; other sessions ignored", () => {
  const events = [
    { seq: 1, session_id: "old", ts: "2026-01-05T08:00:00.000Z", type: "plan_amended", data: { changes: { music_mode: "no_music" }, tracks: [] } },
    { seq: 2, session_id: "s1", ts: "2026-01-05T09:00:00.000Z", type: "session_started", data: { plan: { music_mode: "music", playlist: "calm", guidance: "none" }, tracks: ["calm/01-dawn.wav"] } },
  ];
  let c = I.currentChoice(events, "s1");
  assert.equal(c.source, "plan");
  assert.equal(c.playlist, "calm");
  assert.match(I.choiceText(c), /^Music: playlist “calm” · no guidance · as planned$/);
  events.push({ seq: 3, session_id: "s1", ts: "2026-01-05T09:05:00.000Z", type: "plan_amended", data: { changes: { playlist: ["a", "b"], guidance: "breathing" }, tracks: ["guidance/breathing.ogg", "a", "b"], by: "dr-lee", playlist_duration_s: 3420, warnings: [] } });
  c = I.currentChoice(events, "s1");
  assert.deepEqual([c.music_mode, c.playlist, c.guidance, c.source], ["music", ["a", "b"], "breathing", "choice"]);
  assert.equal(I.choiceText(c), "Music: 2 tracks (57:00) · guidance: breathing · chosen by dr-lee at 09:05 UTC");
  assert.equal(I.currentChoice(events, "s2"), null);
  assert.match(I.choiceText(null), /Not known yet/);
});

test("a choose reply: warnings are warnings of an accepted choice; a refusal names the track", () => {
  const warned = I.choiceReplyView({ ok: true, result: { playlist_duration_s: 2700, warnings: ["the playlist lasts 45.0 min; the protocol expects 50–60 min ([protocol] playlist_minutes)"] } });
  assert.equal(warned.level, "warn");
  assert.match(warned.lines[0], /accepted, with 1 warning/);
  assert.match(warned.lines[1], /^WARNING: the playlist lasts 45\.0 min/);
  assert.deepEqual(I.choiceReplyView({ ok: true, result: { playlist_duration_s: 3420, warnings: [] } }), { level: "ok", lines: ["Choice recorded — playlist 57:00"] });
  const refused = I.choiceReplyView({ ok: false, error: { code: "invalid_payload", message: "field 'playlist.1': calm/03-tide.wav: no such file in music_dir (and 1 more)", details: { fields: { "playlist.1": "calm/03-tide.wav: no such file in music_dir", "playlist.2": "x.ogg: no such file in music_dir" } } } });
  assert.equal(refused.level, "error");
  assert.match(refused.lines[0], /^REFUSED — field 'playlist\.1': calm\/03-tide\.wav: no such file in music_dir/);
  assert.deepEqual(refused.lines.slice(1), ["playlist.1: calm/03-tide.wav: no such file in music_dir", "playlist.2: x.ogg: no such file in music_dir"]);
  assert.equal(I.choiceReplyView(null).level, "none");
});

const FORM = { session_id: "2026-01-05-r7-am", patient_ref: "P-7F3A", session_number: "2", music_mode: "music", guidance: "breathing", builder: { from: "calm", fromTracks: ["a"], tracks: ["a"] }, infusion_minutes: "40", nibp_interval_minutes: "", checkin_interval_minutes: "" };

test("a plan is built as the room reads it, blank settings left to the room", () => {
  const { plan, problems } = I.buildPlan(FORM);
  assert.deepEqual(problems, []);
  assert.deepEqual(plan, { session_id: "2026-01-05-r7-am", patient_ref: "P-7F3A", session_number: 2, music_mode: "music", guidance: "breathing", playlist: "calm", protocol: { infusion_minutes: 40 } });
  const noMusic = I.buildPlan(Object.assign({}, FORM, { music_mode: "no_music", session_number: "maintenance", infusion_minutes: "", checkin_interval_minutes: "10", builder: { tracks: [] } }));
  assert.deepEqual(noMusic.plan, { session_id: "2026-01-05-r7-am", patient_ref: "P-7F3A", session_number: "maintenance", music_mode: "no_music", guidance: "breathing", protocol: { checkin_interval_minutes: 10 } });
});

test("a plan's problems are named in words before anything is published", () => {
  const bad = I.buildPlan(Object.assign({}, FORM, { session_id: " ", patient_ref: "Jane Doe", session_number: "7", builder: { tracks: [] }, infusion_minutes: "0", nibp_interval_minutes: "20", checkin_interval_minutes: "x" }));
  assert.equal(bad.plan, null);
  assert.deepEqual(bad.problems, [
    "Session id: required (e.g. 2026-01-05-r3-am).",
    "Patient pseudonym: one token without spaces — a pseudonym, never the patient's name.",
    "Session number: 1 to 6, or maintenance.",
    "Playlist: a music session needs a playlist (use a named one or add tracks), or choose no music.",
    "Infusion minutes: a number above 0 to 240 (or blank for the room's setting).",
    "NIBP every (minutes): a number from 10 to 15 (or blank for the room's setting).",
    "Check-in every (minutes, no-music sessions): a number above 0 to 60 (or blank for the room's setting).",
  ]);
  assert.match(I.buildPlan(Object.assign({}, FORM, { patient_ref: "" })).problems[0], /pseudonym: required/);
  assert.match(I.buildPlan(Object.assign({}, FORM, { session_id: "x".repeat(65) })).problems[0], /at most 64/);
  assert.equal(I.buildPlan(Object.assign({}, FORM, { nibp_interval_minutes: "10", infusion_minutes: "240" })).problems.length, 0);
});

test("the room's answer to a published plan is the first one after it, in words", () => {
  const events = [
    { seq: 4, type: "plan_rejected", data: { reasons: ["old"] } },
    { seq: 6, type: "phase_changed", data: {} },
  ];
  assert.equal(I.planOutcome(events, 5), null);
  events.push({ seq: 7, type: "plan_rejected", data: { reasons: ["playlist: field 'playlist': calm/03-tide.wav: no such file in music_dir"] } });
  events.push({ seq: 8, type: "session_configured", data: { plan: { session_id: "s9", patient_ref: "P-1", session_number: 1, music_mode: "music" }, tracks: ["a", "b"] } });
  assert.deepEqual(I.planOutcome(events, 5), { ok: false, lines: ["REJECTED — the room keeps what it had:", "• playlist: field 'playlist': calm/03-tide.wav: no such file in music_dir"] });
  const ok = I.planOutcome(events, 7);
  assert.equal(ok.ok, true);
  assert.match(ok.lines[0], /^ACCEPTED — the room configured session s9 \(patient P-1, session 1, 2 music tracks, no guidance\)/);
  events.push({ seq: 9, type: "session_configured", data: { plan: { session_id: "s10", patient_ref: "P-1", session_number: 2, music_mode: "music", guidance: "breathing" }, tracks: ["guidance/breathing.ogg", "a"] } });
  assert.match(I.planOutcome(events, 8).lines[0], /\(patient P-1, session 2, 1 music track, guidance: breathing\)/);
});

test("the choice's phases are the room's (from logic.js's table), the plan's are idle and ended", () => {
  assert.deepEqual(I.CHOICE_PHASES, ["check_in", "integration", "intentions", "pre_infusion"]);
  assert.deepEqual(I.PLAN_PHASES, ["idle", "ended"]);
});
