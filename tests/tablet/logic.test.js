// Unit tests of the tablet's pure logic: `node --test tests/tablet/logic.test.js`.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const L = require(path.join(__dirname, "..", "..", "mqtt_bridge", "tablet", "logic.js"));

test("durations read as mm:ss, h:mm:ss, and --:-- when unknown", () => {
  assert.equal(L.fmtDuration(0), "00:00");
  assert.equal(L.fmtDuration(75.9), "01:15");
  assert.equal(L.fmtDuration(2400), "40:00");
  assert.equal(L.fmtDuration(3725), "1:02:05");
  assert.equal(L.fmtDuration(null), "--:--");
  assert.equal(L.fmtDuration(-30), "-00:30");
});

test("a room is offline, stale after 25 s without state, or online", () => {
  const now = 1_000_000;
  assert.equal(L.roomHealth("offline", now, now).level, "offline");
  assert.equal(L.roomHealth("online", null, now).level, "unknown");
  assert.equal(L.roomHealth("online", now - 24_000, now).level, "online");
  const stale = L.roomHealth("online", now - 26_000, now);
  assert.equal(stale.level, "stale");
  assert.match(stale.text, /NO UPDATE FOR 26 s/);
  // No status seen yet but a state: judged by the state's age alone.
  assert.equal(L.roomHealth(undefined, now - 1000, now).level, "online");
});

test("unmet gate items come in the shapes of the event and of the reply", () => {
  const fromEvent = L.gateInfo({ gate: "safety", met: false, unmet: ["readiness", "nibp"], reasons: { nibp: "no blood pressure recorded" } }, "event #4");
  assert.deepEqual(fromEvent.unmet, [{ key: "readiness", text: "" }, { key: "nibp", text: "no blood pressure recorded" }]);
  const fromReply = L.gateInfo({ gate: "safety", unmet: { consent: "consent not confirmed by a clinician" } }, "reply");
  assert.equal(fromReply.met, false);
  assert.deepEqual(fromReply.unmet, [{ key: "consent", text: "consent not confirmed by a clinician" }]);
  assert.deepEqual(L.normaliseUnmet([{ item: "hr", reason: "no valid heart rate reading" }]), [{ key: "hr", text: "no valid heart rate reading" }]);
});

test("the next step before infusion lists the safety gate with the reasons", () => {
  const state = { phase: "pre_infusion", gates: { readiness: true, consent: false, baseline_vitals: false } };
  const last = L.gateInfo({ gate: "safety", unmet: { consent: "consent not confirmed by a clinician", nibp: "last blood pressure is 20 min old (max 15)", spo2: "SpO2 90 below 92" } });
  const step = L.nextStep(state, last, {});
  assert.equal(step.next, "infusion");
  assert.deepEqual(step.items.map((i) => [i.key, i.met]), [["readiness", true], ["consent", false], ["baseline_vitals", false]]);
  assert.equal(step.items[1].detail, "consent not confirmed by a clinician");
  assert.equal(step.items[2].detail, "nibp: last blood pressure is 20 min old (max 15); spo2: SpO2 90 below 92");
  // Without a check yet, the items still say what is needed.
  assert.match(L.nextStep(state, null, {}).items[2].detail, /NIBP/);
});

test("in infusion the next step is the IV line, then the running timer", () => {
  const waiting = L.nextStep({ phase: "infusion", infusion: { running: false } }, null, {});
  assert.equal(waiting.next, "start_infusion");
  assert.equal(waiting.items[0].met, false);
  assert.equal(L.nextStep({ phase: "infusion", infusion: {} }, null, { iv_line: "dr-a" }).items[0].met, true);
  const running = L.nextStep({ phase: "infusion", infusion: { running: true, started_at: "x" } }, null, {});
  assert.equal(running.items.length, 0);
  assert.match(running.note, /running/);
  const items = L.nextStep({ phase: "discharge", gates: { discharge_vitals: false } }, null, {}).items;
  assert.deepEqual(items.map((i) => i.key), ["psych_ready", "reminders_given", "discharge_vitals"]);
  assert.ok(items.every((i) => !i.met));
  const ready = L.nextStep({ phase: "discharge", gates: { discharge_vitals: true } }, null, { psych_ready: "dr-lee", reminders_given: "dr-lee" }).items;
  assert.ok(ready.every((i) => i.met));
});

test("an error reply reads as code, message and unmet details", () => {
  const text = L.replyText({ request_id: "r", verb: "advance", ok: false, error: { code: "gate_not_met", message: "safety gate not met: readiness: readiness not confirmed by a clinician", details: { gate: "safety", unmet: { readiness: "readiness not confirmed by a clinician" } } } });
  assert.equal(text, "gate_not_met: safety gate not met: readiness: readiness not confirmed by a clinician — unmet: readiness (readiness not confirmed by a clinician)");
  assert.equal(L.replyText({ ok: true, result: { phase: "infusion" } }), "OK (phase infusion)");
  assert.equal(L.replyText({ ok: true, result: {} }), "OK");
  assert.equal(L.errorText({ code: "invalid_state", message: "Can't discharge while in infusion: advance to debrief first" }), "invalid_state: Can't discharge while in infusion: advance to debrief first");
});

test("alarms sort open-first by priority; silence counts down at the room's clock", () => {
  const alarms = [
    { id: "a", priority: "low", state: "active", raised_at: "2026-01-01T00:00:01.000Z" },
    { id: "b", priority: "high", state: "acknowledged", raised_at: "2026-01-01T00:00:00.000Z" },
    { id: "c", priority: "medium", state: "latched", raised_at: "2026-01-01T00:00:02.000Z" },
    { id: "d", priority: "high", state: "active", raised_at: "2026-01-01T00:00:03.000Z", silenced_until: "2026-01-01T00:01:00.000Z" },
  ];
  assert.deepEqual(L.sortAlarms(alarms).map((a) => a.id), ["d", "c", "a", "b"]);
  const now = Date.parse("2026-01-01T00:00:30.000Z");
  assert.equal(L.silenceLeft(alarms[3], now), 30);
  assert.equal(L.silenceLeft(alarms[0], now), 0);
  assert.equal(L.soundingPriority(alarms, now), "medium"); // the high one is silenced
  assert.equal(L.soundingPriority(alarms, now + 60_000), "high");
  assert.equal(L.topPriority(alarms), "high");
  assert.equal(L.soundingPriority([], now), null);
});

test("events are paged from since_seq until last_seq", () => {
  assert.equal(L.nextEventsPage(1, { events: [{ seq: 1 }, { seq: 2 }], last_seq: 10 }), 3);
  assert.equal(L.nextEventsPage(3, { events: [{ seq: 9 }, { seq: 10 }], last_seq: 10 }), null);
  assert.equal(L.nextEventsPage(11, { events: [], last_seq: 10 }), null);
});

test("confirmed items belong to the current session only", () => {
  const events = [
    { seq: 1, session_id: "s1", type: "confirmed", data: { item: "iv_line", by: "a" } },
    { seq: 2, session_id: "s2", type: "session_started", data: {} },
    { seq: 3, session_id: "s2", type: "confirmed", data: { item: "consent", by: "b" } },
  ];
  assert.deepEqual(L.confirmedItems(events, "s2"), { consent: "b" });
});

test("a sparkline is an SVG path that breaks on missing values", () => {
  assert.equal(L.sparkPath([], 100, 10), "");
  assert.equal(L.sparkPath([90, 100], 100, 10, 80, 100), "M0.0 5.0 L100.0 0.0");
  assert.equal(L.sparkPath([90, null, 80], 100, 10, 80, 100), "M0.0 5.0 M100.0 10.0");
});

test("verbs are allowed per phase like the room's table", () => {
  assert.ok(L.allowed("start_session", "idle"));
  assert.ok(!L.allowed("advance", "idle"));
  assert.ok(L.allowed("emergency", "ended"));
  assert.ok(!L.allowed("discharge", "infusion"));
  assert.equal(L.NEXT.pre_infusion, "infusion");
});

test("reasons of another gate are not taken for the gate that matters now", () => {
  const safety = L.gateInfo({ gate: "safety", unmet: { nibp: "no blood pressure recorded" } });
  const step = L.nextStep({ phase: "discharge", gates: { discharge_vitals: false } }, safety, {});
  assert.equal(step.items.find((i) => i.key === "discharge_vitals").detail, "recent NIBP, live SpO2 and HR needed");
  const discharge = L.gateInfo({ gate: "discharge", unmet: { hr: "heart rate 130 outside 45-120" } });
  assert.equal(L.nextStep({ phase: "discharge", gates: {} }, discharge, {}).items.find((i) => i.key === "discharge_vitals").detail, "hr: heart rate 130 outside 45-120");
});

// --- issue 13: the banner's order, reasons, the playlist, new alarms and prompts, limits ---

const at = (s) => "2026-01-01T00:00:" + s + ".000Z";
const nowMs = Date.parse(at("30"));

function roomOf(id, alarms, call, extra) {
  return Object.assign({ id, health: { level: "online", text: "ONLINE" }, phase: "infusion", alarms, call: call || "idle", roomNowMs: nowMs, prompts: [] }, extra || {});
}

test("the banner puts high alarms first, then the call, then medium, low and prompts", () => {
  const rooms = [
    roomOf("room-1", [
      { id: "m", code: "hr_high", priority: "medium", state: "active", raised_at: at("01"), message: "Heart rate 130 above 120" },
      { id: "l", code: "nibp_failed", priority: "low", state: "active", raised_at: at("02"), message: "NIBP failed" },
    ], "placed", { prompts: [{ kind: "vitals", text: "SpO2/HR by hand due" }] }),
    roomOf("room-2", [
      { id: "h", code: "spo2_critical", priority: "high", state: "active", raised_at: at("03"), message: "SpO2 86 below 88" },
    ]),
  ];
  const att = L.attention(rooms, null);
  assert.deepEqual(att.lines.map((l) => l.level), ["high", "call", "medium", "low", "prompt"]);
  assert.deepEqual(att.lines.map((l) => l.kind), ["alarm", "call", "alarm", "alarm", "prompt"]);
  assert.equal(att.lines[0].text, "room-2: HIGH ALARM — SpO2 86 below 88");
  assert.equal(att.lines[1].text, "room-1: PATIENT CALL");
  // The banner shows four lines and "+N more": a high alarm is never among the hidden ones.
  const many = [roomOf("a", [], "placed"), roomOf("b", [], "placed"), roomOf("c", [], "placed"), roomOf("d", [], "placed"), rooms[1]];
  assert.equal(L.attention(many, null).lines[0].level, "high");
  assert.equal(att.worst, "high");
  // Sound follows the same precedence: the call over a medium alarm (as the room's buzzer).
  assert.equal(L.attention([rooms[0]], null).worst, "call");
  assert.equal(L.attention([roomOf("x", [rooms[0].alarms[0]])], null).worst, "medium");
});

test("a lost broker and a silent room in session are high lines; acknowledged alarms are not shown", () => {
  const silent = roomOf("room-3", [{ id: "k", code: "spo2_low", priority: "medium", state: "acknowledged", raised_at: at("01"), message: "x" }], "idle", { health: { level: "stale", text: "NO UPDATE FOR 40 s" } });
  const att = L.attention([silent], 12.4);
  assert.deepEqual(att.lines.map((l) => l.text), [
    "CONNECTION TO THE BROKER LOST 12 s ago — rooms are NOT being watched. Reconnecting…",
    "room-3: ROOM NO UPDATE FOR 40 s during Infusion",
  ]);
  assert.deepEqual(att.lines.map((l) => l.kind), ["broker", "room"]);
  assert.equal(att.worst, "medium");
});

test("checkin_missed and manual_vitals_overdue are alarms like the others", () => {
  const alarms = [
    { id: "c", code: "checkin_missed", kind: "technical", priority: "medium", state: "active", raised_at: at("01"), message: "No-music check-in missed: check on the patient" },
    { id: "v", code: "manual_vitals_overdue", kind: "technical", priority: "medium", state: "active", raised_at: at("02"), message: "Hand-entered SpO2 and heart rate overdue: measure and record them" },
  ];
  const att = L.attention([roomOf("room-4", alarms)], null);
  assert.deepEqual(att.lines.map((l) => l.text), [
    "room-4: MEDIUM ALARM — No-music check-in missed: check on the patient",
    "room-4: MEDIUM ALARM — Hand-entered SpO2 and heart rate overdue: measure and record them",
  ]);
  assert.equal(att.worst, "medium");
});

test("a re-activated alarm reads as sounding again", () => {
  const again = { id: "h", code: "spo2_critical", priority: "high", state: "active", raised_at: at("01"), value: 83, value_at_ack: 86, message: "SpO2 83 below 88" };
  assert.ok(L.reactivated(again));
  assert.equal(L.alarmStateText(again), "SOUNDING AGAIN — worse than 86 at acknowledgement");
  assert.ok(!L.reactivated(Object.assign({}, again, { state: "acknowledged" })));
  assert.ok(!L.reactivated(Object.assign({}, again, { value_at_ack: null })));
  assert.equal(L.alarmStateText(Object.assign({}, again, { value_at_ack: null })), "active");
  assert.equal(L.attention([roomOf("r", [again])], null).lines[0].text, "r: HIGH ALARM AGAIN — SpO2 83 below 88");
  assert.equal(L.eventText({ type: "alarm_reactivated", data: { alarm: again } }), "Alarm SOUNDING AGAIN (worse than 86 at acknowledgement): SpO2 83 below 88");
});

test("a reason needs words; the emergency's presets are one tap, details optional", () => {
  assert.ok(L.hasWords("patient unresponsive"));
  assert.ok(L.hasWords("Ü 2"));
  for (const bad of ["", "   ", "...", "\u200b", "—!?"]) assert.ok(!L.hasWords(bad), JSON.stringify(bad));
  assert.deepEqual(L.EMERGENCY_PRESETS, ["Airway", "Desaturation", "Hypotension", "Agitation"]);
  assert.equal(L.emergencyReason("Airway", ""), "Airway");
  assert.equal(L.emergencyReason("Desaturation", "  SpO2 80 on air "), "Desaturation — SpO2 80 on air");
  assert.equal(L.emergencyReason("Hypotension", " ... "), "Hypotension");
  assert.equal(L.emergencyReason("", "fell from the chair"), "fell from the chair");
  assert.equal(L.emergencyReason("", "  "), ""); // "Other…" with nothing typed: ask
});

test("during the infusion with the playlist playing, advance is not the next step", () => {
  const running = L.nextStep({ phase: "infusion", infusion: { running: true, started_at: "x" }, music: { playing: true } }, null, {});
  assert.equal(running.advance, "blocked");
  assert.match(running.when, /infusion completes/);
  const playing = L.nextStep({ phase: "infusion", infusion: { completed: true, started_at: "x" }, music: { playing: true } }, null, {});
  assert.equal(playing.advance, "cuts_music");
  assert.match(playing.when, /playlist ends/);
  assert.match(playing.note, /asks for a reason/);
  const stopped = L.nextStep({ phase: "infusion", infusion: { started_at: "x" }, music: { playing: true } }, null, {});
  assert.equal(stopped.advance, "cuts_music");
  const over = L.nextStep({ phase: "infusion", infusion: { completed: true, started_at: "x" }, music: { playing: false } }, null, {});
  assert.equal(over.advance, undefined);
  assert.equal(over.note, "Infusion complete: advance to debrief.");
});

test("vitals_due and checkin_due are prompts until answered", () => {
  const ev = (seq, type, data, sid) => ({ seq, ts: at(String(seq).padStart(2, "0")), session_id: sid || "s1", type, data: data || {} });
  const events = [
    ev(1, "vitals_due", { escalated: false }),
    ev(2, "vitals_recorded", { sys: 120, dia: 80, by: "a", source: "manual" }), // BP only: still due
    ev(3, "checkin_due", { escalated: false }),
  ];
  assert.deepEqual(L.duePrompts(events, "s1").map((p) => [p.kind, p.text, p.since]), [
    ["vitals", "SpO2/HR by hand due", at("01")],
    ["checkin", "Check-in on the patient due", at("03")],
  ]);
  const answered = events.concat([ev(4, "vitals_recorded", { spo2: 97, hr: 70, by: "a", source: "manual" }), ev(5, "checkin_recorded", { by: "a", note: null })]);
  assert.deepEqual(L.duePrompts(answered, "s1"), []);
  const missed = answered.concat([ev(6, "vitals_due", { escalated: true })]);
  assert.equal(L.duePrompts(missed, "s1")[0].text, "SpO2/HR by hand due (the last one was missed)");
  assert.deepEqual(L.duePrompts(missed, "s2"), []);
  assert.deepEqual(L.duePrompts(missed.concat([ev(7, "session_ended", {})]), "s1"), []);
  assert.equal(L.eventText(ev(6, "vitals_due", { escalated: true })), "SpO2/HR by hand due (the last one was missed)");
});

test("the alarm limits in force sit beside their readings, the plan's marked", () => {
  const limits = {
    spo2_low: { limit: 90, priority: "medium", delay_s: 10, source: "plan" },
    spo2_critical: { limit: 88, priority: "high", delay_s: 5, source: "config" },
    hr_high: { limit: 120, priority: "medium", delay_s: 10, source: "config" },
    hr_low: { limit: 45, priority: "medium", delay_s: 10, source: "config" },
    sys_high: { limit: 180, priority: "high", delay_s: 0, source: "config" },
    dia_high: { limit: 110, priority: "high", delay_s: 0, source: "config" },
    sys_low: { limit: 90, priority: "medium", delay_s: 0, source: "config" },
    stale_s: { value: 10, source: "config" },
    escalate_after_s: { value: 30, source: "plan" },
  };
  const items = L.limitItems(limits);
  assert.deepEqual(items.spo2, [
    { code: "spo2_low", plan: true, text: "< 90 medium 10 s" },
    { code: "spo2_critical", plan: false, text: "< 88 high 5 s" },
  ]);
  assert.deepEqual(items.hr.map((i) => i.text), ["< 45 medium 10 s", "> 120 medium 10 s"]);
  assert.deepEqual(items.nibp.map((i) => i.text), ["sys < 90 medium", "sys > 180 high", "dia > 110 high"]);
  assert.deepEqual(items.other, [
    { code: "stale_s", plan: false, text: "no reading for 10 s" },
    { code: "escalate_after_s", plan: true, text: "escalate after 30 s" },
  ]);
  assert.deepEqual(L.limitItems(undefined), { spo2: [], hr: [], nibp: [], other: [] });
});

test("a silence reply names the alarms refused (silence budget spent)", () => {
  const text = L.replyText({ verb: "alarm_silence", ok: true, result: { silenced: ["a"], refused: ["spo2_critical-1"], seconds: 120 } });
  assert.equal(text, "OK — silenced 1 alarm for 120 s; REFUSED for spo2_critical-1 (silence budget spent — it keeps sounding)");
  assert.equal(L.replyText({ verb: "alarm_silence", ok: true, result: { silenced: ["a", "b"], refused: [], seconds: 60 } }), "OK — silenced 2 alarms for 60 s");
});

test("session_ended says whether the patient was discharged and which alarms were open", () => {
  assert.equal(L.eventText({ type: "session_ended", data: { reason: "discharged", by: "a", discharged: true, from_phase: "discharge", open_alarms: [] } }), "Session ended: discharged");
  assert.equal(
    L.eventText({ type: "session_ended", data: { reason: "transferred", by: "a", discharged: false, from_phase: "infusion", open_alarms: [{ id: "e", code: "emergency", priority: "high", state: "active" }] } }),
    "Session ended: transferred (not discharged, from Infusion) — unacknowledged: emergency");
});

test("cutting the playlist short reads with its reason", () => {
  assert.equal(L.eventText({ type: "music_stopped", data: { reason: "phase_changed", by: "dr-lee", note: "patient wants to talk now" } }), "Music stopped (phase changed) by dr-lee: patient wants to talk now");
  assert.equal(L.eventText({ type: "music_stopped", data: { reason: "playlist_ended" } }), "Music stopped (playlist ended)");
  assert.equal(L.eventText({ type: "infusion_stopped", data: { reason: "patient asked to stop", by: "dr-lee" } }), "Infusion stopped: patient asked to stop (dr-lee)");
});
