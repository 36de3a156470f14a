/* The rolling context: what the archive (clinicd) knows of the patient's previous session,
 * shown at check-in, integration and intentions. Pure functions, no DOM, no MQTT. Loaded by
 * index.html as a plain script (global `CourseContext`) and by `node --test`
 * (tests/clinicd/course_context.test.js). */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.CourseContext = factory();
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  /** The phases where the previous session prepares this one. */
  const CONTEXT_PHASES = ["check_in", "integration", "intentions"];
  /** How long a fetched course is shown before it is asked for again. */
  const REFRESH_MS = 60000;

  function wanted(state) {
    return !!(state && state.patient_ref && CONTEXT_PHASES.indexOf(state.phase) >= 0);
  }

  /** The session before the current one: the last of the course that is not it and started
   * before it (the course is in time order). */
  function previousSession(course, sessionId) {
    const sessions = (course && course.sessions) || [];
    const here = sessions.findIndex((s) => s.session_id === sessionId);
    const before = here >= 0 ? sessions.slice(0, here) : sessions;
    return before.length ? before[before.length - 1] : null;
  }

  function bp(r) {
    return r ? r.sys + "/" + r.dia : "–";
  }

  function playlist(s) {
    return Array.isArray(s.playlist) ? s.playlist.join(", ") : String(s.playlist || "–");
  }

  function localTime(ts) {
    if (!ts) return "";
    const d = new Date(ts);
    return isNaN(d) ? String(ts) : d.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false });
  }

  /** Rows (label, text) describing one past session: music and how it went, the notes of
   * intentions and debrief, side effects, the blood-pressure course. */
  function sessionRows(s) {
    const rows = [];
    rows.push(["Session", "Session " + s.session_number + " · " + s.room_id + " · " + localTime(s.started_at) + (s.end_reason ? " · " + s.end_reason : "")]);
    const music = s.music_mode === "no_music" ? "No music" : "Music: " + playlist(s);
    rows.push(["Music chosen", music + (s.guidance && s.guidance !== "none" ? " · guidance " + s.guidance : "")]);
    const played = (s.music_played || []).map((t) => t.track + (typeof t.played_s === "number" ? " (" + Math.round(t.played_s / 60) + " min)" : ""));
    const stopped = (s.music_stopped || []).filter(Boolean);
    if (played.length || stopped.length) rows.push(["How it went", (played.length ? "Played " + played.join(", ") : "Nothing played") + (stopped.length ? " · stopped: " + stopped.join(", ") : "")]);
    const notes = s.notes || [];
    for (const kind of ["intentions", "debrief", "integration", "preparation", "observation", "checkin"]) {
      for (const n of notes.filter((x) => x.kind === kind)) rows.push([kind[0].toUpperCase() + kind.slice(1), n.text]);
    }
    if (!notes.length) rows.push(["Notes", s.notes_status === "unsupported" ? "The room kept no notes." : "No notes."]);
    // An empty list is a record that none were seen: "none", never a blank.
    const effects = (s.side_effects || []).map((e) => ((e.items || []).join(", ") || "none") + (e.note ? " (" + e.note + ")" : ""));
    rows.push(["Side effects", effects.length ? effects.join("; ") : "None recorded"]);
    for (const a of s.adverse_events || []) rows.push(["Adverse event", a.kind + " (" + a.severity + "): " + a.action]);
    const course = (s.bp || []).map(bp).join(" → ");
    rows.push(["Blood pressure", "baseline " + bp(s.bp_baseline) + " · peak " + bp(s.bp_peak) + (course ? " · " + course : "") + (s.spo2_min !== null && s.spo2_min !== undefined ? " · SpO2 min " + s.spo2_min + "%" : "")]);
    if (s.dose) rows.push(["Dose", s.dose.total_mg + " mg (" + s.dose.dose_mg_per_kg + " mg/kg)"]);
    return rows;
  }

  /** The course at a glance: one line per session, and the course's flags (with the current
   * session's first). */
  function glance(course, sessionId) {
    const lines = ((course && course.sessions) || []).map((s) => ({
      current: s.session_id === sessionId,
      text: "#" + s.session_number + " · " + localTime(s.started_at) + " · " + s.room_id + " · " + (s.end_reason || "in progress"),
    }));
    const flags = ((course && course.flags) || []).slice().sort((a, b) => (b.session_id === sessionId) - (a.session_id === sessionId));
    return { lines, flags: flags.map((f) => ({ code: f.code, text: f.message, current: f.session_id === sessionId })) };
  }

  /** Everything the panel shows, or null when there is nothing to show. */
  function contextView(course, state) {
    if (!wanted(state) || !course || course.patient_ref !== state.patient_ref) return null;
    const prev = previousSession(course, state.session_id);
    return {
      title: prev ? "Previous session (" + prev.session_number + ")" : "First session of the course",
      rows: prev ? sessionRows(prev) : [],
      glance: glance(course, state.session_id),
    };
  }

  return { CONTEXT_PHASES, REFRESH_MS, wanted, previousSession, sessionRows, glance, contextView };
});
