/* The tablet's pure logic: no DOM, no MQTT. Loaded by index.html as a plain script (global
 * `RoomLogic`) and by `node --test` as a CommonJS module (tests/tablet/logic.test.js). */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.RoomLogic = factory();
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const PHASES = ["idle", "check_in", "integration", "intentions", "pre_infusion", "infusion",
    "debrief", "preparation", "discharge", "ended"];
  const ACTIVE = PHASES.slice(1, -1);
  const NEXT = {};
  for (let i = 1; i < PHASES.length - 1; i++) NEXT[PHASES[i]] = PHASES[i + 1];
  const GATE_ON_ENTRY = { infusion: "safety", ended: "discharge" };

  // Which verbs each phase allows: the same table as controller/phases.py (the room decides;
  // this only greys out buttons that would certainly be refused).
  const ANY = PHASES;
  const VERB_PHASES = {
    start_session: ["idle", "ended"],
    advance: ACTIVE,
    confirm: ACTIVE,
    start_infusion: ["infusion"],
    stop_infusion: ["infusion"],
    music: ACTIVE,
    lights: ANY, call_ack: ANY, call_clear: ANY, alarm_ack: ANY, alarm_silence: ANY,
    nibp_now: ANY,
    record_vitals: ACTIVE,
    checkin: ACTIVE,
    emergency: ANY,
    discharge: ["discharge"],
    end_session: ACTIVE,
    events: ANY, status: ANY,
    library: ANY,
    choose: ["check_in", "integration", "intentions", "pre_infusion"],
    note: ACTIVE,
    notes: ANY,
    record_dose: ["pre_infusion", "infusion"],
    side_effects: ["debrief", "preparation", "discharge"],
    adverse_event: ACTIVE,
  };
  const RANK = { high: 3, medium: 2, low: 1 };
  const STALE_AFTER_MS = 25000;
  const REPLY_TIMEOUT_MS = 5000;

  const PHASE_LABEL = {
    idle: "Idle (no session)", check_in: "Check-in", integration: "Integration",
    intentions: "Intentions", pre_infusion: "Pre-infusion", infusion: "Infusion",
    debrief: "Debrief", preparation: "Preparation", discharge: "Discharge", ended: "Ended",
  };

  function allowed(verb, phase) {
    const phases = VERB_PHASES[verb];
    return !!phases && phases.indexOf(phase || "idle") >= 0;
  }

  function phaseLabel(phase) {
    return PHASE_LABEL[phase] || String(phase || "unknown");
  }

  /** 75 → "01:15"; 3725 → "1:02:05"; null → "--:--". */
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "--:--";
    const neg = seconds < 0;
    let s = Math.floor(Math.abs(seconds));
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const two = (n) => (n < 10 ? "0" : "") + n;
    return (neg ? "-" : "") + (h ? h + ":" + two(m) : two(m)) + ":" + two(s);
  }

  /** Parse a contract timestamp ("…Z") into epoch ms; null when absent or bad. */
  function parseTs(text) {
    if (!text) return null;
    const ms = Date.parse(text);
    return isNaN(ms) ? null : ms;
  }

  /**
   * Whether a room can be trusted right now.
   * status: "online" | "offline" | undefined; lastStateAt: when (tablet clock, ms) the room's
   * state last arrived; now: tablet clock ms. The room republishes state at least every 10 s.
   */
  function roomHealth(status, lastStateAt, now, staleAfterMs) {
    const limit = staleAfterMs || STALE_AFTER_MS;
    if (status === "offline") return { level: "offline", text: "OFFLINE" };
    if (lastStateAt === null || lastStateAt === undefined) {
      return { level: "unknown", text: status === "online" ? "NO STATE YET" : "UNKNOWN" };
    }
    const age = now - lastStateAt;
    if (age > limit) {
      return { level: "stale", text: "NO UPDATE FOR " + Math.round(age / 1000) + " s" };
    }
    return { level: "online", text: "ONLINE" };
  }

  /**
   * The unmet items of a gate as [{key, text}], from any of the shapes the room sends:
   * gate_checked {unmet: ["nibp", …], reasons: {nibp: "…"}}, gate_not_met details
   * {unmet: {nibp: "…"}}, or a list of {item, reason}.
   */
  function normaliseUnmet(unmet, reasons) {
    const out = [];
    const why = reasons && typeof reasons === "object" ? reasons : {};
    if (Array.isArray(unmet)) {
      for (const u of unmet) {
        if (typeof u === "string") out.push({ key: u, text: why[u] || "" });
        else if (u && typeof u === "object") {
          const key = u.item || u.key || u.code || "?";
          out.push({ key: String(key), text: String(u.reason || u.text || u.message || why[key] || "") });
        }
      }
    } else if (unmet && typeof unmet === "object") {
      for (const k of Object.keys(unmet)) out.push({ key: k, text: String(unmet[k] || "") });
    }
    return out;
  }

  /** A gate verdict from a gate_checked event's data or a gate_not_met error's details. */
  function gateInfo(data, source, ts) {
    if (!data || typeof data !== "object") return null;
    return {
      gate: data.gate || null,
      met: data.met === undefined ? false : !!data.met,
      unmet: normaliseUnmet(data.unmet, data.reasons),
      override: data.override || null,
      source: source || "",
      ts: ts || null,
    };
  }

  const VITAL_KEYS = ["nibp", "spo2", "hr"];

  /**
   * What the next step needs: {next, gate, items: [{key, label, met, detail}], note}.
   * state: RoomState; last: gateInfo of the latest check (or null); confirmed: items confirmed
   * in this session (from `confirmed` events).
   */
  function nextStep(state, last, confirmed) {
    const s = state || {};
    const phase = s.phase || "idle";
    const gates = s.gates || {};
    const done = confirmed || {};
    const inf = s.infusion || {};
    const why = {};
    const gateNow = phase === "pre_infusion" ? "safety" : phase === "infusion" ? "infusion_start" : phase === "discharge" ? "discharge" : null;
    // Reasons from the latest check of the gate that matters now (a check without a gate
    // name, e.g. from an older room, is taken as that gate).
    if (last && (!last.gate || last.gate === gateNow)) for (const u of last.unmet) why[u.key] = u.text;
    const vitalsDetail = () =>
      VITAL_KEYS.filter((k) => why[k]).map((k) => k + ": " + why[k]).join("; ");
    if (phase === "idle" || phase === "ended") {
      return { next: "check_in", gate: null, items: [], note: "Waiting for a plan: start_session begins the next session." };
    }
    if (phase === "pre_infusion") {
      return {
        next: "infusion", gate: "safety",
        items: [
          { key: "readiness", label: "Readiness confirmed", met: !!gates.readiness, detail: gates.readiness ? "" : why.readiness || "not confirmed by a clinician" },
          { key: "consent", label: "Consent confirmed", met: !!gates.consent, detail: gates.consent ? "" : why.consent || "not confirmed by a clinician" },
          { key: "baseline_vitals", label: "Baseline vitals within limits", met: !!gates.baseline_vitals, detail: gates.baseline_vitals ? "" : vitalsDetail() || "recent NIBP, valid SpO2 and HR needed" },
        ],
        note: "Entering infusion is the safety gate.",
      };
    }
    if (phase === "infusion") {
      if (!inf.running && !inf.completed && !inf.started_at) {
        const iv = !!done.iv_line;
        return {
          next: "start_infusion", gate: "infusion_start",
          items: [{ key: "iv_line", label: "IV line confirmed", met: iv, detail: iv ? "" : why.iv_line || "IV line not confirmed" }],
          note: "Start the infusion timer when the IV line is confirmed.",
        };
      }
      if (inf.running) {
        return { next: "debrief", when: "when the infusion completes", advance: "blocked", gate: null, items: [], note: "Infusion running: the debrief follows when it completes (or stop_infusion)." };
      }
      const ended = inf.completed ? "Infusion complete" : "Infusion stopped";
      if (s.music && s.music.playing) {
        // The room keeps the debrief for the end of the playlist; cutting it needs a reason.
        return { next: "debrief", when: "when the playlist ends", advance: "cuts_music", gate: null, items: [], note: ended + ": the playlist is still playing and the debrief follows it. Advancing now cuts the music short and asks for a reason." };
      }
      return { next: "debrief", gate: null, items: [], note: ended + ": advance to debrief." };
    }
    if (phase === "discharge") {
      return {
        next: "ended", gate: "discharge",
        items: [
          { key: "psych_ready", label: "Psychologically ready to leave", met: !!done.psych_ready, detail: done.psych_ready ? "" : why.psych_ready || "not confirmed by a clinician" },
          { key: "reminders_given", label: "Safety reminders given", met: !!done.reminders_given, detail: done.reminders_given ? "" : why.reminders_given || "not confirmed" },
          { key: "discharge_vitals", label: "Discharge vitals within limits", met: !!gates.discharge_vitals, detail: gates.discharge_vitals ? "" : vitalsDetail() || "recent NIBP, live SpO2 and HR needed" },
        ],
        note: "Discharge checks the discharge gate and ends the session.",
      };
    }
    return { next: NEXT[phase] || null, gate: GATE_ON_ENTRY[NEXT[phase]] || null, items: [], note: "" };
  }

  /** Whether a clinician's reason holds words, as the room requires (letters or digits;
   * blank, invisible or punctuation-only text is refused). */
  function hasWords(text) {
    return /[\p{L}\p{N}]/u.test(String(text || ""));
  }

  /** The emergency's one-tap reasons; "Other…" asks for words. */
  const EMERGENCY_PRESETS = ["Airway", "Desaturation", "Hypotension", "Agitation"];

  /** The emergency's reason: the preset, with the typed details when any ("" when neither). */
  function emergencyReason(preset, details) {
    const more = String(details || "").trim();
    if (!preset) return hasWords(more) ? more : "";
    return preset + (hasWords(more) ? " — " + more : "");
  }

  /** A reply in words: "ok" with its result, or "code: message — unmet: …". */
  function replyText(reply) {
    if (!reply) return "";
    if (reply.ok && reply.verb === "alarm_silence") return silenceText(reply.result || {});
    if (reply.ok) {
      const r = reply.result || {};
      const keys = Object.keys(r).filter((k) => k !== "events");
      const brief = keys.slice(0, 4).map((k) => k + " " + brief1(r[k])).join(", ");
      return "OK" + (brief ? " (" + brief + ")" : "");
    }
    return errorText(reply.error);
  }

  /** An alarm_silence reply in words; alarms whose silence budget is spent keep sounding. */
  function silenceText(result) {
    const silenced = result.silenced || [];
    const refused = result.refused || [];
    let text = "OK — silenced " + silenced.length + " alarm" + (silenced.length === 1 ? "" : "s") + " for " + result.seconds + " s";
    if (refused.length) {
      text += "; REFUSED for " + refused.join(", ") + " (silence budget spent — it keeps sounding)";
    }
    return text;
  }

  function brief1(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v === "object") return JSON.stringify(v).slice(0, 60);
    return String(v);
  }

  function errorText(error) {
    if (!error) return "error (no details)";
    let text = (error.code || "error") + ": " + (error.message || "");
    const d = error.details;
    if (d && typeof d === "object") {
      if (d.unmet) {
        const items = normaliseUnmet(d.unmet, d.reasons);
        text += " — unmet: " + items.map((u) => u.key + (u.text ? " (" + u.text + ")" : "")).join("; ");
      } else {
        const rest = JSON.stringify(d);
        if (rest && rest !== "{}") text += " — " + rest.slice(0, 200);
      }
    }
    return text;
  }

  /** Alarms in the order a clinician should see them: unacknowledged first, by priority. */
  function sortAlarms(alarms) {
    const list = Array.isArray(alarms) ? alarms.slice() : [];
    const open = (a) => (a.state === "acknowledged" ? 0 : 1);
    list.sort((a, b) => open(b) - open(a) || (RANK[b.priority] || 0) - (RANK[a.priority] || 0) ||
      String(a.raised_at).localeCompare(String(b.raised_at)));
    return list;
  }

  /** Whether an alarm sounds again: acknowledged, then it got worse (the room re-activated it). */
  function reactivated(alarm) {
    return !!alarm && alarm.state !== "acknowledged" && alarm.value_at_ack !== null && alarm.value_at_ack !== undefined;
  }

  /** An alarm's state in words ("active", "SOUNDING AGAIN — worse than 86 at acknowledgement"). */
  function alarmStateText(alarm) {
    if (!reactivated(alarm)) return String(alarm.state);
    return "SOUNDING AGAIN — worse than " + alarm.value_at_ack + " at acknowledgement";
  }

  // The banner's order and the sound's precedence: high alarms, the patient call, medium,
  // low, then prompts (as the room's own buzzer: high, call, medium, low).
  const ATTENTION_ORDER = ["high", "call", "medium", "low", "prompt"];

  function attentionRank(level) {
    const i = ATTENTION_ORDER.indexOf(level);
    return i < 0 ? ATTENTION_ORDER.length : i;
  }

  /**
   * What needs attention across rooms, most urgent first: {lines: [{level, kind, room, text}],
   * worst} where worst is the sound to play (high, call, medium, low or null) and kind is
   * broker, room (offline or silent), alarm, call or prompt.
   * rooms: [{id, health, phase, alarms, call, roomNowMs, prompts}]; lostForS: seconds since
   * the broker connection was lost (null while connected).
   */
  function attention(rooms, lostForS) {
    const lines = [];
    let worst = null;
    const bump = (k) => { if (worst === null || attentionRank(k) < attentionRank(worst)) worst = k; };
    if (lostForS !== null && lostForS !== undefined) {
      lines.push({ level: "high", kind: "broker", room: null, text: "CONNECTION TO THE BROKER LOST " + Math.round(lostForS) + " s ago — rooms are NOT being watched. Reconnecting…" });
      bump("medium");
    }
    for (const r of rooms) {
      const inSession = r.phase && r.phase !== "idle" && r.phase !== "ended";
      if (r.health.level === "offline" || r.health.level === "stale") {
        lines.push({ level: inSession ? "high" : "medium", kind: "room", room: r.id, text: r.id + ": ROOM " + r.health.text + (inSession ? " during " + phaseLabel(r.phase) : "") });
        if (inSession) bump("medium");
      }
      for (const a of sortAlarms(r.alarms)) {
        if (a.state === "acknowledged") continue;
        const left = silenceLeft(a, r.roomNowMs);
        lines.push({ level: a.priority, kind: "alarm", room: r.id, text: r.id + ": " + String(a.priority).toUpperCase() + (reactivated(a) ? " ALARM AGAIN — " : " ALARM — ") + a.message + (left > 0 ? " (silenced " + Math.ceil(left) + " s)" : "") });
      }
      const sp = soundingPriority(r.alarms, r.roomNowMs);
      if (sp) bump(sp);
      if (r.call === "placed" || r.call === "escalated") {
        lines.push({ level: r.call === "escalated" ? "high" : "call", kind: "call", room: r.id, text: r.id + ": PATIENT CALL" + (r.call === "escalated" ? " — ESCALATED" : "") });
        bump("call");
      }
      for (const p of r.prompts || []) lines.push({ level: "prompt", kind: "prompt", room: r.id, text: r.id + ": " + p.text });
    }
    lines.sort((a, b) => attentionRank(a.level) - attentionRank(b.level));
    return { lines, worst };
  }

  /**
   * The prompts of the session still unanswered: hand-entered SpO2/HR (`vitals_due`, answered
   * by `vitals_recorded` with SpO2 or HR) and the no-music check-in (`checkin_due`, answered by
   * `checkin_recorded`). [{kind, text, since, escalated}]
   */
  function duePrompts(events, sessionId) {
    const open = {};
    for (const e of events || []) {
      if (!sessionId || e.session_id !== sessionId) continue;
      const d = e.data || {};
      if (e.type === "vitals_due") open.vitals = { kind: "vitals", since: e.ts, escalated: !!d.escalated };
      if (e.type === "vitals_recorded" && (d.spo2 !== undefined || d.hr !== undefined)) delete open.vitals;
      if (e.type === "checkin_due") open.checkin = { kind: "checkin", since: e.ts, escalated: !!d.escalated };
      if (e.type === "checkin_recorded") delete open.checkin;
      if (e.type === "session_ended") { delete open.vitals; delete open.checkin; }
    }
    const words = { vitals: "SpO2/HR by hand due", checkin: "Check-in on the patient due" };
    return ["vitals", "checkin"].filter((k) => open[k]).map((k) => Object.assign(open[k], {
      text: words[k] + (open[k].escalated ? " (the last one was missed)" : ""),
    }));
  }

  // Which limits belong beside which reading, in the order a clinician reads them.
  const LIMITS_BY_VITAL = {
    spo2: [["spo2_low", "<"], ["spo2_critical", "<"]],
    hr: [["hr_low", "<"], ["hr_high", ">"]],
    nibp: [["sys_low", "sys <"], ["sys_high", "sys >"], ["dia_high", "dia >"]],
  };

  /**
   * The alarm limits in force (RoomState.alarm_limits) as short items beside each reading:
   * {spo2: [{code, text, plan}], hr: […], nibp: […], other: […]}; `plan` when the session's
   * plan set it rather than the clinic's config.
   */
  function limitItems(alarmLimits) {
    const all = alarmLimits && typeof alarmLimits === "object" ? alarmLimits : {};
    const out = { spo2: [], hr: [], nibp: [], other: [] };
    for (const vital of Object.keys(LIMITS_BY_VITAL)) {
      for (const [code, side] of LIMITS_BY_VITAL[vital]) {
        const l = all[code];
        if (!l || l.limit === null || l.limit === undefined) continue;
        out[vital].push({ code, plan: l.source === "plan", text: side + " " + l.limit + " " + (l.priority || "") + (l.delay_s ? " " + l.delay_s + " s" : "") });
      }
    }
    const words = { stale_s: "no reading for", escalate_after_s: "escalate after" };
    for (const code of Object.keys(words)) {
      const l = all[code];
      if (l && l.value !== null && l.value !== undefined) out.other.push({ code, plan: l.source === "plan", text: words[code] + " " + l.value + " s" });
    }
    return out;
  }

  /** Seconds an alarm stays silenced at room time roomNowMs (0 when not silenced). */
  function silenceLeft(alarm, roomNowMs) {
    const until = parseTs(alarm && alarm.silenced_until);
    if (until === null || roomNowMs === null) return 0;
    return Math.max(0, (until - roomNowMs) / 1000);
  }

  /** The priority that should sound: the highest unacknowledged alarm not silenced, or null. */
  function soundingPriority(alarms, roomNowMs) {
    let best = null;
    for (const a of alarms || []) {
      if (a.state === "acknowledged") continue;
      if (silenceLeft(a, roomNowMs) > 0) continue;
      if (!best || (RANK[a.priority] || 0) > (RANK[best] || 0)) best = a.priority;
    }
    return best;
  }

  /** The highest priority among unacknowledged alarms (silenced or not), or null. */
  function topPriority(alarms) {
    let best = null;
    for (const a of alarms || []) {
      if (a.state === "acknowledged") continue;
      if (!best || (RANK[a.priority] || 0) > (RANK[best] || 0)) best = a.priority;
    }
    return best;
  }

  /** An SVG path through values (nulls break the line) in a w×h box. */
  function sparkPath(values, w, h, lo, hi) {
    const vals = (values || []).filter((v) => typeof v === "number");
    if (!vals.length) return "";
    const min = lo !== undefined ? lo : Math.min.apply(null, vals);
    let max = hi !== undefined ? hi : Math.max.apply(null, vals);
    if (max <= min) max = min + 1;
    const n = values.length;
    const dx = n > 1 ? w / (n - 1) : 0;
    let d = "";
    let pen = false;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (typeof v !== "number") { pen = false; continue; }
      const clamped = Math.min(max, Math.max(min, v));
      const x = (i * dx).toFixed(1);
      const y = (h - ((clamped - min) / (max - min)) * h).toFixed(1);
      d += (pen ? "L" : "M") + x + " " + y + " ";
      pen = true;
    }
    return d.trim();
  }

  /**
   * Paging the `events` command: given the query's since_seq and the reply's result, where the
   * next page starts, or null when caught up.
   */
  function nextEventsPage(sinceSeq, result) {
    const events = (result && result.events) || [];
    const last = result && typeof result.last_seq === "number" ? result.last_seq : 0;
    if (!events.length) return null;
    const got = events[events.length - 1].seq;
    if (got >= last) return null;
    return Math.max(got + 1, sinceSeq + 1);
  }

  /** One event in words, for the room's log. */
  function eventText(e) {
    const d = (e && e.data) || {};
    const alarm = d.alarm || {};
    switch (e && e.type) {
      case "phase_changed": return "Phase " + phaseLabel(d.from) + " → " + phaseLabel(d.to) + (d.by ? " by " + d.by : "");
      case "gate_checked": {
        const items = normaliseUnmet(d.unmet, d.reasons).map((u) => u.key);
        return "Gate " + d.gate + (d.met ? " met" : " NOT met: " + items.join(", ")) + (d.override ? " — overridden: " + d.override.reason : "");
      }
      case "confirmed": return "Confirmed " + d.item + " by " + d.by;
      case "nibp_result": return "NIBP " + d.sys + "/" + d.dia + " (MAP " + d.map + ")";
      case "nibp_failed": return "NIBP failed: " + d.code;
      case "alarm_raised": case "alarm_escalated": case "alarm_acknowledged": case "alarm_silenced": case "alarm_cleared": case "alarm_latched":
        return e.type.replace("alarm_", "Alarm ") + ": " + (alarm.message || alarm.code || "") + (d.by ? " by " + d.by : "");
      case "alarm_reactivated": return "Alarm SOUNDING AGAIN (worse than " + alarm.value_at_ack + " at acknowledgement): " + (alarm.message || alarm.code || "");
      case "vitals_due": return "SpO2/HR by hand due" + (d.escalated ? " (the last one was missed)" : "");
      case "checkin_due": return "Check-in due" + (d.escalated ? " (the last one was missed)" : "");
      case "vitals_recorded": return "Vitals by hand: " + ["sys", "dia", "spo2", "hr"].filter((k) => d[k] !== undefined && d[k] !== null).map((k) => k + " " + d[k]).join(", ") + (d.by ? " by " + d.by : "");
      case "checkin_recorded": return "Check-in by " + d.by + (d.note ? ": " + d.note : "");
      case "call_placed": return "Patient call";
      case "call_acknowledged": return "Call acknowledged by " + d.by;
      case "call_cleared": return "Call cleared" + (d.by ? " by " + d.by : "") + (d.where ? " (" + d.where + ")" : "");
      case "emergency": return "EMERGENCY: " + d.reason + " (" + d.by + ")";
      case "infusion_stopped": return "Infusion stopped: " + d.reason + (d.by ? " (" + d.by + ")" : "");
      case "music_stopped": return "Music stopped (" + String(d.reason).replace(/_/g, " ") + ")" + (d.by ? " by " + d.by : "") + (d.note ? ": " + d.note : "");
      case "command_rejected": return "Command " + d.verb + " rejected: " + d.code;
      case "session_started": return "Session started";
      case "session_ended": {
        const open = (d.open_alarms || []).map((a) => a.code);
        return "Session ended: " + d.reason + (d.discharged === false ? " (not discharged, from " + phaseLabel(d.from_phase) + ")" : "") + (open.length ? " — unacknowledged: " + open.join(", ") : "");
      }
      case "track_started": return "Track " + d.track;
      case "lighting_changed": return "Lights " + d.scene + " " + Math.round((d.level || 0) * 100) + "%";
      default: {
        const text = JSON.stringify(d);
        return String(e && e.type) + (text && text !== "{}" ? " " + text.slice(0, 80) : "");
      }
    }
  }

  /** Confirmed items of the current session, rebuilt from events (reset by session_started). */
  function confirmedItems(events, sessionId) {
    const out = {};
    for (const e of events || []) {
      if (sessionId && e.session_id && e.session_id !== sessionId) continue;
      if (e.type === "session_started") for (const k of Object.keys(out)) delete out[k];
      if (e.type === "confirmed" && e.data) out[e.data.item] = e.data.by || true;
    }
    return out;
  }

  return {
    PHASES, NEXT, VERB_PHASES, RANK, STALE_AFTER_MS, REPLY_TIMEOUT_MS,
    allowed, phaseLabel, fmtDuration, parseTs, roomHealth, normaliseUnmet, gateInfo, nextStep,
    replyText, errorText, sortAlarms, silenceLeft, soundingPriority, topPriority, sparkPath,
    nextEventsPage, eventText, confirmedItems, hasWords, EMERGENCY_PRESETS, emergencyReason,
    reactivated, alarmStateText, ATTENTION_ORDER, attention, duePrompts, limitItems,
  };
});
