/* The intentions step and the plan builder: the room's music library, a playlist being built
 * (its running total against `[protocol] playlist_minutes`), the patient's current choice, and
 * a session plan checked in words before it is published. Pure functions, no DOM, no MQTT.
 * Loaded by index.html as a plain script (global `Intentions`, after logic.js) and by
 * `node --test` (tests/tablet/intentions.test.js). */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory(require("./logic.js"));
  else root.Intentions = factory(root.RoomLogic);
})(typeof self !== "undefined" ? self : this, function (L) {
  "use strict";

  /** Where the room accepts `choose` (controller/phases.py, via logic.js's table). */
  const CHOICE_PHASES = L.VERB_PHASES.choose;
  /** Where a plan may be published: the room refuses one while a session runs. */
  const PLAN_PHASES = ["idle", "ended"];
  /** The protocol's range when the room does not say (the seed's 50–60 minutes). */
  const DEFAULT_RANGE = [50, 60];
  const GUIDANCE = [
    ["none", "None"], ["breathing", "Breathing"], ["body_scan", "Body scan"], ["clinician", "Clinician-led"],
  ];
  const SESSION_NUMBERS = ["1", "2", "3", "4", "5", "6", "maintenance"];
  /** The plan's monitoring settings a clinic may set from the tablet (SessionPlan.protocol),
   * each with its bounds as controller/models.py's ProtocolOverrides has them. */
  const PROTOCOL_FIELDS = [
    { key: "infusion_minutes", label: "Infusion minutes", min: 0, minOpen: true, max: 240 },
    { key: "nibp_interval_minutes", label: "NIBP every (minutes)", min: 10, max: 15 },
    { key: "checkin_interval_minutes", label: "Check-in every (minutes, no-music sessions)", min: 0, minOpen: true, max: 60 },
  ];

  /** A length as mm:ss (h:mm:ss from an hour), or "--:--" when unknown. */
  function fmtLength(seconds) {
    return typeof seconds === "number" && isFinite(seconds) ? L.fmtDuration(seconds) : "--:--";
  }

  /** A library being read page by page: add one `library` reply's result. Tracks are kept in
   * the room's order (deduplicated by path), playlists by name, the range as the room says. */
  function addPage(lib, result) {
    const out = {
      tracks: (lib && lib.tracks ? lib.tracks.slice() : []),
      playlists: (lib && lib.playlists ? lib.playlists.slice() : []),
      range: (lib && lib.range) || null,
      total: result.total,
      playlistsTotal: result.playlists_total,
    };
    const seen = new Set(out.tracks.map((t) => t.path));
    for (const t of result.tracks || []) if (!seen.has(t.path)) { seen.add(t.path); out.tracks.push(t); }
    const names = new Set(out.playlists.map((p) => p.name));
    for (const p of result.playlists || []) if (!names.has(p.name)) { names.add(p.name); out.playlists.push(p); }
    if (Array.isArray(result.playlist_minutes) && result.playlist_minutes.length === 2) out.range = result.playlist_minutes.slice();
    return out;
  }

  /** The library's music and guidance tracks apart. */
  function splitTracks(tracks) {
    const list = tracks || [];
    return { music: list.filter((t) => t.kind !== "guidance"), guidance: list.filter((t) => t.kind === "guidance") };
  }

  /** A playlist's length from the library's durations (guidance tracks are not counted, as
   * the room does not): {seconds, unknown: [paths whose length is not known]}. */
  function playlistTotal(paths, tracks) {
    const known = new Map((tracks || []).map((t) => [t.path, t]));
    let seconds = 0;
    const unknown = [];
    for (const p of paths || []) {
      const t = known.get(p);
      if (t && t.kind === "guidance") continue;
      if (!t || typeof t.duration_s !== "number") unknown.push(p);
      else seconds += t.duration_s;
    }
    return { seconds, unknown };
  }

  function minutes(m) {
    return String(Math.round(m * 100) / 100);
  }

  /**
   * The running total against the protocol's range, in words: {level, text}. `level` is
   * "ok" (within), "warn" (outside: the room accepts it with a warning), "unknown" (a length is
   * not known) or "empty".
   */
  function rangeCheck(total, range) {
    const [least, most] = Array.isArray(range) && range.length === 2 ? range : DEFAULT_RANGE;
    const span = minutes(least) + "–" + minutes(most) + " min";
    const t = total || { seconds: 0, unknown: [] };
    if (t.unknown && t.unknown.length) {
      return { level: "unknown", text: "Total at least " + fmtLength(t.seconds) + " — the length of " + t.unknown[0] + (t.unknown.length > 1 ? " and " + (t.unknown.length - 1) + " more" : "") + " is not known (the protocol expects " + span + ")" };
    }
    if (!t.seconds) return { level: "empty", text: "No tracks yet — the protocol expects " + span };
    const total_ = "Total " + fmtLength(t.seconds);
    if (t.seconds < least * 60) return { level: "warn", text: total_ + " — SHORT: " + fmtLength(least * 60 - t.seconds) + " under the " + span + " the protocol expects" };
    if (t.seconds > most * 60) return { level: "warn", text: total_ + " — LONG: " + fmtLength(t.seconds - most * 60) + " over the " + span + " the protocol expects" };
    return { level: "ok", text: total_ + " — within the " + span + " the protocol expects" };
  }

  /** The list with the item at `index` moved by `delta` (−1 up, +1 down); unchanged at an end. */
  function move(list, index, delta) {
    const out = list.slice();
    const to = index + delta;
    if (index < 0 || index >= out.length || to < 0 || to >= out.length) return out;
    const [item] = out.splice(index, 1);
    out.splice(to, 0, item);
    return out;
  }

  /** The list without the item at `index`. */
  function remove(list, index) {
    return list.filter((_, i) => i !== index);
  }

  /** A title for a path: the library's, else the file's name. */
  function titleOf(path, tracks) {
    const t = (tracks || []).find((x) => x.path === path);
    return t && t.title ? t.title : String(path).split("/").pop();
  }

  /** What the builder holds, as `choose`/the plan want it: the playlist's name while it is the
   * named list unchanged (the room resolves it), else the paths in order. */
  function playlistValue(builder) {
    if (builder.from && builder.fromTracks && builder.fromTracks.join("\n") === builder.tracks.join("\n")) return builder.from;
    return builder.tracks.slice();
  }

  /** The arguments of `choose`, or {error} in words when the choice cannot be sent. */
  function choiceArgs(form) {
    const args = { music_mode: form.music_mode, guidance: form.guidance };
    if (form.music_mode === "music") {
      if (!form.builder.tracks.length) return { error: "Music needs a playlist: use a named playlist or add tracks (not sent)." };
      args.playlist = playlistValue(form.builder);
    }
    return { args };
  }

  /**
   * The session's current choice: the plan `session_started` carried, then each `plan_amended`
   * applied in order. {music_mode, playlist, guidance, tracks, source, by, ts, duration_s,
   * warnings}, or null when the page has seen neither for this session.
   */
  function currentChoice(events, sessionId) {
    let c = null;
    for (const e of events || []) {
      if (!e || !e.data || (sessionId && e.session_id !== sessionId)) continue;
      if (e.type === "session_started") {
        const p = e.data.plan || {};
        c = { music_mode: p.music_mode || "music", playlist: p.playlist || [], guidance: p.guidance || "none", tracks: e.data.tracks || [], source: "plan", by: e.data.by || null, ts: e.ts, duration_s: null, warnings: [] };
      } else if (e.type === "plan_amended") {
        const ch = e.data.changes || {};
        c = Object.assign({}, c || { music_mode: "music", playlist: [], guidance: "none" }, ch, {
          tracks: e.data.tracks || [], source: "choice", by: e.data.by || null, ts: e.ts,
          duration_s: e.data.playlist_duration_s === undefined ? null : e.data.playlist_duration_s,
          warnings: e.data.warnings || [],
        });
      }
    }
    return c;
  }

  const GUIDANCE_WORDS = { none: "no guidance", breathing: "guidance: breathing", body_scan: "guidance: body scan", clinician: "guidance: clinician-led" };

  /** The current choice in words (one line). */
  function choiceText(c) {
    if (!c) return "Not known yet (the session's start is older than the events this tablet has).";
    const music = c.music_mode === "no_music" ? "No music"
      : "Music: " + (typeof c.playlist === "string" ? "playlist “" + c.playlist + "”" : (c.playlist || []).length + " track" + ((c.playlist || []).length === 1 ? "" : "s"))
        + (typeof c.duration_s === "number" ? " (" + fmtLength(c.duration_s) + ")" : "");
    const who = c.source === "plan" ? "as planned" : "chosen" + (c.by ? " by " + c.by : "") + (c.ts ? " at " + String(c.ts).slice(11, 16) + " UTC" : "");
    return music + " · " + (GUIDANCE_WORDS[c.guidance] || c.guidance) + " · " + who;
  }

  /**
   * A `choose` reply as the clinician must read it: {level: "ok" | "warn" | "error" | "none",
   * lines}. Warnings are accepted choices the clinician should know of; a refusal names the
   * missing track(s).
   */
  function choiceReplyView(reply) {
    if (!reply) return { level: "none", lines: ["No reply within 5 s — the room may not have received the choice."] };
    if (!reply.ok) {
      const e = reply.error || {};
      const lines = ["REFUSED — " + (e.message || e.code || "error")];
      const fields = e.details && e.details.fields;
      if (fields && Object.keys(fields).length > 1) for (const k of Object.keys(fields)) lines.push(k + ": " + fields[k]);
      return { level: "error", lines };
    }
    const r = reply.result || {};
    const head = "Choice recorded" + (typeof r.playlist_duration_s === "number" ? " — playlist " + fmtLength(r.playlist_duration_s) : "");
    const warnings = r.warnings || [];
    if (warnings.length) return { level: "warn", lines: [head + " (accepted, with " + warnings.length + " warning" + (warnings.length === 1 ? "" : "s") + ")"].concat(warnings.map((w) => "WARNING: " + w)) };
    return { level: "ok", lines: [head] };
  }

  function numberField(text) {
    const v = String(text === undefined || text === null ? "" : text).trim();
    if (!v) return undefined;
    const n = Number(v);
    return isFinite(n) ? n : NaN;
  }

  /**
   * A session plan from the form, checked the way the room checks it (controller/models.py's
   * SessionPlan): {plan, problems: [words]}. `plan` is null while there is a problem.
   * The form: session_id, patient_ref, session_number, music_mode, builder, guidance and the
   * PROTOCOL_FIELDS' keys (text as typed; blank means the room's own setting).
   */
  function buildPlan(form) {
    const problems = [];
    const sessionId = String(form.session_id || "").trim();
    if (!sessionId) problems.push("Session id: required (e.g. 2026-01-05-r3-am).");
    else if (sessionId.length > 64) problems.push("Session id: at most 64 characters.");
    const ref = String(form.patient_ref || "").trim();
    if (!ref) problems.push("Patient pseudonym: required (the clinic's pseudonym, e.g. P-7F3A).");
    else if (/\s/.test(ref)) problems.push("Patient pseudonym: one token without spaces — a pseudonym, never the patient's name.");
    else if (ref.length > 64) problems.push("Patient pseudonym: at most 64 characters.");
    const number = String(form.session_number || "");
    if (SESSION_NUMBERS.indexOf(number) < 0) problems.push("Session number: 1 to 6, or maintenance.");
    const plan = {
      session_id: sessionId, patient_ref: ref,
      session_number: number === "maintenance" ? "maintenance" : Number(number),
      music_mode: form.music_mode === "no_music" ? "no_music" : "music",
      guidance: form.guidance || "none",
    };
    if (GUIDANCE.every((g) => g[0] !== plan.guidance)) problems.push("Guidance: none, breathing, body scan or clinician-led.");
    if (plan.music_mode === "music") {
      if (!form.builder || !form.builder.tracks.length) problems.push("Playlist: a music session needs a playlist (use a named one or add tracks), or choose no music.");
      else plan.playlist = playlistValue(form.builder);
    }
    const protocol = {};
    for (const f of PROTOCOL_FIELDS) {
      const v = numberField(form[f.key]);
      if (v === undefined) continue;
      const low = f.minOpen ? v <= f.min : v < f.min;
      if (Number.isNaN(v) || low || v > f.max) {
        problems.push(f.label + ": a number " + (f.minOpen ? "above " + f.min : "from " + f.min) + " to " + f.max + " (or blank for the room's setting).");
      } else protocol[f.key] = v;
    }
    if (Object.keys(protocol).length) plan.protocol = protocol;
    return { plan: problems.length ? null : plan, problems };
  }

  /** The room's answer to a plan published after event `afterSeq`: the first
   * `session_configured` or `plan_rejected` after it, in words, or null while none came. */
  function planOutcome(events, afterSeq) {
    for (const e of events || []) {
      if (!e || e.seq <= afterSeq) continue;
      if (e.type === "session_configured") {
        const p = (e.data && e.data.plan) || {};
        const tracks = (e.data && e.data.tracks) || [];
        const guided = p.guidance === "breathing" || p.guidance === "body_scan"; // a track first
        const n = tracks.length - (guided ? 1 : 0);
        const music = p.music_mode === "no_music" ? "no music" : n + " music track" + (n === 1 ? "" : "s");
        return { ok: true, lines: ["ACCEPTED — the room configured session " + p.session_id + " (patient " + p.patient_ref + ", session " + p.session_number + ", " + music + ", " + (GUIDANCE_WORDS[p.guidance] || "no guidance") + "). Start it from the room's Start session button."] };
      }
      if (e.type === "plan_rejected") {
        const reasons = (e.data && e.data.reasons) || [];
        return { ok: false, lines: ["REJECTED — the room keeps what it had:"].concat(reasons.map((r) => "• " + r)) };
      }
    }
    return null;
  }

  return {
    CHOICE_PHASES, PLAN_PHASES, DEFAULT_RANGE, GUIDANCE, SESSION_NUMBERS, PROTOCOL_FIELDS,
    fmtLength, addPage, splitTracks, playlistTotal, rangeCheck, move, remove, titleOf,
    playlistValue, choiceArgs, currentChoice, choiceText, choiceReplyView, buildPlan, planOutcome,
  };
});
