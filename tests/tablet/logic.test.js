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
